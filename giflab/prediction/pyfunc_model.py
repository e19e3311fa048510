"""The MLflow face of one engine's curve model: raw ``MODEL_INPUTS`` rows in, kilobytes out.

Registered versions carry the exported ``<engine>.pkl``, ``scaler.pkl`` and ``model_card.json``
as one artifact folder; ``load_context`` opens it with the verified loader, so a registry copy
that was altered is refused exactly like a local one. The model is logged "from code" (the
``ENTRY_SCRIPT`` below, engine in the model config), so no pickled Python object is stored
beside the verified files. This module imports mlflow (its base class); only
``giflab.prediction.registry`` imports it, and lazily.
"""

import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

from giflab.prediction.load import VARIANT_INPUTS, LoadedModels, load_models

MODELS_ARTIFACT = "models"
# The file MLflow stores and runs to build the model when it is loaded (models from code).
ENTRY_SCRIPT = """\
import mlflow

from giflab.prediction.pyfunc_model import CurveModel

mlflow.models.set_model(CurveModel())
"""


class CurveModel(PythonModel):
    """Predicts one engine's kilobytes from a DataFrame with every ``MODEL_INPUTS`` column.

    Columns are picked by name (extra columns are ignored); GIF features are raw, the scaler
    stored with the model is applied inside; CLIP columns may be NaN.
    """

    def __init__(self):
        self.engine: str | None = None
        self._models: LoadedModels | None = None

    def load_context(self, context) -> None:
        """Verify and load the exported files of the configured engine (``model_config``)."""
        self.engine = context.model_config["engine"]
        self._models = load_models(context.artifacts[MODELS_ARTIFACT], engines=[self.engine])

    # The pandas hint tells MLflow not to infer a schema from hints: the signature is explicit.
    def predict(self, context, model_input: pd.DataFrame, params=None) -> np.ndarray:
        """Predicted kilobytes, one per row of ``model_input``."""
        if self._models is None:
            raise RuntimeError("CurveModel.predict before load_context")
        return predict_frame(self._models, self.engine, model_input)


def predict_frame(models: LoadedModels, engine: str, frame: pd.DataFrame) -> np.ndarray:
    """Predicted kilobytes of ``engine`` for a DataFrame holding the card's input columns."""
    frame = pd.DataFrame(frame)
    card = models.card
    missing = [c for c in card.feature_names if c not in frame.columns]
    if missing:
        raise ValueError(f"model input lacks columns {missing}")
    gif = frame[list(card.gif_features)].to_numpy(dtype=np.float64, na_value=np.nan)
    variants = frame[list(VARIANT_INPUTS)].to_numpy(dtype=np.float64, na_value=np.nan)
    return models.predict_kilobytes(engine, gif, variants)

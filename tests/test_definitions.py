"""What the Dagster UI shows for every asset: a description, an owner and one of the groups."""

from giflab_assets.definitions import defs
from giflab_assets.owners import OWNERS

GROUPS = {"ingest", "features", "compression", "compression_extra", "dataset", "models", "reports"}


def test_every_asset_has_a_description_an_owner_and_a_group():
    graph = defs.resolve_asset_graph()
    keys = list(graph.get_all_asset_keys())
    assert len(keys) >= 19
    for key in keys:
        node = graph.get(key)
        assert node.description and len(node.description) > 20, key
        assert node.owners == OWNERS == ["team:giflab"], key
        assert node.group_name in GROUPS, (key, node.group_name)
    assert {graph.get(k).group_name for k in keys} == GROUPS


def test_loading_the_definitions_leaves_training_libraries_unimported():
    """`giflab run`, the sensor and the UI's code server import the definitions; scikit-learn,
    XGBoost, matplotlib, MLflow and torch load only in the steps that use them."""
    import subprocess
    import sys

    from tests.conftest import REPO

    heavy = ["sklearn", "xgboost", "matplotlib", "mlflow", "torch", "open_clip"]
    code = f"import sys, giflab_assets.runner; print([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"

"""The MLflow resource: where curve-model runs, artifacts and registered models are kept."""

from dagster import ConfigurableResource

from giflab.prediction.tracking import EXPERIMENT_NAME, MlflowSettings


class MlflowResource(ConfigurableResource):
    """Tracking and registry URIs; by default a SQLite store and artifacts in the data folder.

    Unset ``tracking_uri`` means ``sqlite:///<data_dir>/mlflow.db`` with artifacts in
    ``<data_dir>/mlruns`` (never the working directory's ``./mlruns``). A configured
    ``tracking_uri`` (e.g. a remote server) keeps the server's artifact store unless
    ``artifact_location`` is set too. ``registry_uri`` defaults to the tracking URI.
    """

    data_dir: str
    tracking_uri: str | None = None
    registry_uri: str | None = None
    artifact_location: str | None = None
    experiment_name: str = EXPERIMENT_NAME

    def settings(self) -> MlflowSettings:
        """The domain ``MlflowSettings`` for this configuration."""
        if self.tracking_uri is None:
            return MlflowSettings.for_data_dir(
                self.data_dir,
                registry_uri=self.registry_uri,
                experiment_name=self.experiment_name,
                **({"artifact_location": self.artifact_location} if self.artifact_location else {}),
            )
        return MlflowSettings(
            tracking_uri=self.tracking_uri,
            registry_uri=self.registry_uri,
            artifact_location=self.artifact_location,
            experiment_name=self.experiment_name,
        )

    def resolved_tracking_uri(self) -> str:
        """The tracking URI actually used (the default SQLite file when none is configured)."""
        return self.settings().tracking_uri

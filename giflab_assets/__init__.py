"""GifLab's Dagster layer: thin assets, sensors and checks over the ``giflab`` domain code."""

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

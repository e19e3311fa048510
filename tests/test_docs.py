"""docs/architecture.md names every asset, asset check and sensor the definitions hold."""

import re

from tests.conftest import REPO


def test_architecture_names_every_asset_check_and_sensor():
    from giflab_assets.definitions import defs

    text = (REPO / "docs" / "architecture.md").read_text()
    graph = defs.resolve_asset_graph()
    names = {key.to_user_string() for key in graph.get_all_asset_keys()}
    names |= {check.name for check in graph.asset_check_keys}
    names |= {sensor.name for sensor in defs.sensors}
    mermaid = re.search(r"```mermaid\n(.*?)```", text, flags=re.S).group(1)
    assets = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert not {n for n in names if f"`{n}`" not in text}, "missing from the text"
    assert not {a for a in assets if not re.search(rf"\b{a}\b", mermaid)}, "missing from the graph"


def _anchors(page) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces as hyphens."""
    headings = re.findall(r"^#+ (.+)$", page.read_text(), flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_docs_link_to_files_and_headings_that_exist():
    for page in [REPO / "README.md", *(REPO / "docs").glob("*.md")]:
        links = re.findall(r"\]\(([^)#\s]+\.md)(?:#([^)\s]*))?\)", page.read_text())
        for target, anchor in links:
            if "://" in target:
                continue
            assert (page.parent / target).is_file(), f"{page.name} links to {target}"
            if anchor:
                assert anchor in _anchors(page.parent / target), f"{page.name}: {target}#{anchor}"

"""The house rules of the layout: every service module lives in a program or role package, and no module
name stands in two layers (``services/pipeline`` beside ``ingestion/pipeline`` misleads whoever reads it)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LAYERS = {"services": ("services",), "domain": ("ingestion", "health_engine", "alerts"), "schemas": ("schemas",)}


def _names(packages: tuple[str, ...]) -> dict[str, list[str]]:
    """Module and package names of a layer, with where each is."""
    found: dict[str, list[str]] = {}
    for package in packages:
        for path in (REPO / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            relative = path.relative_to(REPO)
            name = relative.parent.name if path.name == "__init__.py" else path.stem
            found.setdefault(name, []).append(str(relative))
    return found


def test_no_module_of_services_outside_a_subpackage() -> None:
    loose = sorted(p.name for p in (REPO / "services").glob("*.py") if p.name != "__init__.py")
    assert loose == []


def test_no_name_is_shared_across_layers() -> None:
    names = {layer: _names(packages) for layer, packages in LAYERS.items()}
    shared = []
    layers = list(names)
    for i, upper in enumerate(layers):
        for lower in layers[i + 1 :]:
            for name in sorted(set(names[upper]) & set(names[lower])):
                shared.append((name, names[upper][name], names[lower][name]))
    assert shared == []

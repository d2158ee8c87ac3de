"""The layering holds at run time too: the gateway and the seeder load without the simulator.

`lint-imports` (in `make test`) checks the static import graph against the contract in
pyproject.toml; these tests start a fresh interpreter and look at what importing a layer pulls in,
which also catches imports made inside functions at import time.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

PROBE = """
import importlib, json, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))
"""


def loaded_packages(*modules: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, *modules], capture_output=True, text=True, check=True
    )
    return set(json.loads(out.stdout))


@pytest.mark.parametrize(
    ("modules", "forbidden"),
    [
        (("labcore.config", "labcore.profiles", "labcore.scopes", "labcore.tenants"),
         {"gateway", "seed", "simulator"}),
        (("gateway.__main__", "gateway.app", "gateway.config"), {"seed", "simulator"}),
        (("seed.lab", "seed.loader", "seed.users"), {"gateway", "simulator"}),
    ],
    ids=["labcore", "gateway", "seed"],
)  # fmt: skip
def test_a_layer_loads_without_the_layers_above_it(
    modules: tuple[str, ...], forbidden: set[str]
) -> None:
    loaded = loaded_packages(*modules)
    assert modules[0].split(".")[0] in loaded  # the probe did import the layer
    assert not loaded & forbidden, f"{modules[0]} pulled in {sorted(loaded & forbidden)}"


def test_the_probe_sees_an_import_of_the_top_layer() -> None:
    # the probe is not blind: importing the CLI does load the simulator and both layers below
    assert {"simulator", "gateway", "seed", "labcore"} <= loaded_packages("simulator.cli")

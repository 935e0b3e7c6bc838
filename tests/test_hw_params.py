"""Every hardware component validates its parameters the same way (hw/params.py, amaranth-soc
style): keyword-only, checked at once, ``TypeError`` for a wrong type and ``ValueError`` for a
wrong value with a message that names the parameter, every parameter a read-only property, and a
declared ``latency`` (the tiles: ``fill_drain``)."""

import gc
import inspect
import re

import pytest
from amaranth.hdl import signed

from golden.config import mac_flavour, preset
from hw.accumulators import CentroidAccumulators
from hw.compressed_mac_tile import CompressedMacTile
from hw.decompressor import Decompressor
from hw.index_decoder import IndexDecoder
from hw.mac_pe import MacPE
from hw.mac_tile import MacTile
from hw.outlier_path import OutlierSidePath
from hw.pe import GoboPE
from hw.reconstruction import ReconstructionMultiplier
from hw.tile import GoboTile
from hw.tile_controller import TileController
from hw.tile_memories import MemorySpec, TileMemories

TINY = preset("tiny")
MAC, _ = mac_flavour("w8a8", pes=2, lanes=4, max_rows=16, max_dot_length=16, max_tokens=2)

BAD_WEIGHT_BITS = [("weight_bits", 40, ValueError, "an integer between 2 and 32, not 40"),
                   ("weight_bits", 1, ValueError, "an integer between 2 and 32, not 1"),
                   ("weight_bits", "8", TypeError, "an integer between 2 and 32, not '8'"),
                   ("weight_bits", True, TypeError, "an integer between 2 and 32, not True")]
BAD_MEMORIES = [("memories", "x", ValueError, "one of 'internal', 'ports', not 'x'"),
                ("memories", 3, TypeError, "one of 'internal', 'ports', not 3")]

# class: (good keyword arguments, [(parameter, bad value, error, message after "<name> must be ")])
COMPONENTS = {
    IndexDecoder: ({"lanes": 4, "index_bits": 3}, [
        ("lanes", 0, ValueError, "an integer between 1 and 256, not 0"),
        ("lanes", 4.0, TypeError, "an integer between 1 and 256, not 4.0"),
        ("index_bits", 9, ValueError, "an integer between 2 and 8, not 9"),
        ("index_bits", None, TypeError, "an integer between 2 and 8, not None"),
    ]),
    CentroidAccumulators: ({"config": TINY}, []),
    ReconstructionMultiplier: ({"config": TINY}, []),
    GoboPE: ({"config": TINY}, []),
    OutlierSidePath: ({"config": TINY}, []),
    TileController: ({"config": TINY, "element": signed(8), "dot_bits": 30, "acc_bits": 40}, [
        ("element", "x", TypeError, "a shape, not 'x'"),
        ("dot_bits", 1, ValueError, "an integer between 2 and 64, not 1"),
        ("dot_bits", 3.5, TypeError, "an integer between 2 and 64, not 3.5"),
        ("acc_bits", 65, ValueError, "an integer between 2 and 64, not 65"),
    ]),
    GoboTile: ({"config": TINY, "memories": "ports"}, BAD_MEMORIES),
    MacPE: ({"config": MAC, "weight_bits": 8}, BAD_WEIGHT_BITS),
    Decompressor: ({"config": MAC, "weight_bits": 8}, BAD_WEIGHT_BITS),
    MacTile: ({"config": MAC, "weight_bits": 8, "memories": "ports"},
              BAD_WEIGHT_BITS + BAD_MEMORIES),
    CompressedMacTile: ({"config": MAC, "weight_bits": 8, "memories": "ports"},
                        BAD_WEIGHT_BITS + BAD_MEMORIES),
}
IDS = [cls.__name__ for cls in COMPONENTS]


@pytest.fixture(autouse=True)
def _collect_unused():
    """Components built here are never elaborated: report them while the filter is active."""
    yield
    gc.collect()


pytestmark = pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")


@pytest.mark.parametrize("cls", COMPONENTS, ids=IDS)
def test_parameters_are_keyword_only(cls):
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    assert params and all(p.kind is p.KEYWORD_ONLY for p in params), params
    good, _ = COMPONENTS[cls]
    with pytest.raises(TypeError):
        cls(*good.values())


@pytest.mark.parametrize("cls", [cls for cls, (good, _) in COMPONENTS.items() if "config" in good],
                         ids=[cls.__name__ for cls, (good, _) in COMPONENTS.items()
                              if "config" in good])
@pytest.mark.parametrize("bad", [3, None, {"lanes": 4}])
def test_a_non_config_is_a_type_error_naming_config(cls, bad):
    good, _ = COMPONENTS[cls]
    with pytest.raises(TypeError, match=re.escape(f"config must be a GoboConfig, not {bad!r}")):
        cls(**{**good, "config": bad})


CASES = [(cls, *case) for cls, (_, cases) in COMPONENTS.items() for case in cases]


@pytest.mark.parametrize("cls,name,value,error,message", CASES,
                         ids=[f"{c.__name__}-{n}-{v!r}" for c, n, v, _, _ in CASES])
def test_a_bad_value_names_its_parameter(cls, name, value, error, message):
    good, _ = COMPONENTS[cls]
    with pytest.raises(error, match="^" + re.escape(f"{name} must be {message}") + "$"):
        cls(**{**good, name: value})


@pytest.mark.parametrize("cls", COMPONENTS, ids=IDS)
def test_parameters_are_read_only_properties(cls):
    good, _ = COMPONENTS[cls]
    component = cls(**good)
    for name, value in good.items():
        assert isinstance(inspect.getattr_static(component, name), property), name
        if name == "memories":    # the TileMemories built from it
            assert component.memories.place == value
        else:
            assert getattr(component, name) is value
        with pytest.raises(AttributeError):
            setattr(component, name, value)
    timing = "latency" if hasattr(component, "latency") else "fill_drain"
    assert isinstance(inspect.getattr_static(component, timing), property)
    assert isinstance(getattr(component, timing), int)
    with pytest.raises(AttributeError):
        setattr(component, timing, 0)


def test_defaults_of_the_controller_are_exposed():
    ctrl = TileController(config=TINY)
    assert (ctrl.element.width, ctrl.dot_bits, ctrl.acc_bits) == (
        TINY.index_bits, TINY.out_bits, TINY.acc_bits)


def test_tile_memories_validate_and_are_read_only():
    specs = {"a": MemorySpec(8, 4)}
    mems = TileMemories(specs, "ports")    # positional, as synth/designs.py calls it
    assert mems.place == "ports" and dict(mems.specs) == specs
    for name in ("place", "specs"):
        with pytest.raises(AttributeError):
            setattr(mems, name, None)
    with pytest.raises(TypeError):
        mems.specs["b"] = MemorySpec(8, 4)
    with pytest.raises(ValueError, match="^place must be one of 'internal', 'ports', not 'x'$"):
        TileMemories(specs, "x")
    with pytest.raises(TypeError, match="^specs must be a dict of names to MemorySpec"):
        TileMemories({"a": (8, 4)})


@pytest.mark.parametrize("kwargs,error,message", [
    ({"width": 0, "depth": 4}, ValueError, "width must be a positive integer, not 0"),
    ({"width": 8, "depth": 2.0}, TypeError, "depth must be a positive integer, not 2.0"),
    ({"width": 8, "depth": 4, "reads": ("sync", "async")}, ValueError,
     "reads must be one of 'sync', 'comb', not 'async'"),
    ({"width": 8, "depth": 4, "reads": ()}, ValueError, "reads must name at least one"),
    ({"width": 8, "depth": 4, "reads": "sync"}, TypeError, "reads must be a tuple"),
    ({"width": 8, "depth": 4, "granularity": 3}, ValueError, "granularity must divide width=8"),
])
def test_memory_spec_validates(kwargs, error, message):
    with pytest.raises(error, match="^" + re.escape(message)):
        MemorySpec(**kwargs)

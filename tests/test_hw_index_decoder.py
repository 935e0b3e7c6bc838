"""IndexDecoder: one-hot lane masks per centroid, combinational."""

import gc

import numpy as np
import pytest
from amaranth.sim import Simulator

from golden.hwmodel.packing import Field, pack
from hw.index_decoder import IndexDecoder


@pytest.mark.parametrize("lanes,index_bits", [(1, 3), (4, 3), (16, 4), (5, 2)])
def test_masks_are_the_one_hot_decode(lanes, index_bits):
    dut = IndexDecoder(lanes=lanes, index_bits=index_bits)
    assert dut.latency == 0 and dut.n_centroids == 1 << index_bits
    rng = np.random.default_rng(lanes * 10 + index_bits)
    field = [Field("i", index_bits, count=lanes, array=True)]

    async def testbench(ctx):
        cases = [np.zeros(lanes, int), np.full(lanes, (1 << index_bits) - 1)]
        cases += [rng.integers(0, 1 << index_bits, size=lanes) for _ in range(30)]
        for indexes in cases:
            ctx.set(dut.indexes.as_value(), pack(field, {"i": indexes}))
            union = 0
            for k in range(1 << index_bits):
                want = sum(1 << lane for lane in range(lanes) if indexes[lane] == k)
                got = ctx.get(dut.masks[k])
                assert got == want, f"indexes {indexes.tolist()}: mask {k} {got:#x} != {want:#x}"
                assert not union & got, "a lane selected two centroids"
                union |= got
            assert union == (1 << lanes) - 1, "a lane selected no centroid"

    sim = Simulator(dut)
    sim.add_testbench(testbench)
    sim.run()


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
@pytest.mark.parametrize("kwargs,error,message", [
    ({"lanes": 0, "index_bits": 3}, ValueError, "lanes must be an integer between 1 and 256, "
                                                "not 0"),
    ({"lanes": 4, "index_bits": 9}, ValueError, "index_bits must be an integer between 2 and 8, "
                                                "not 9"),
    ({"lanes": 4, "index_bits": True}, TypeError, "index_bits must be an integer between 2 and "
                                                  "8, not True"),
])
def test_rejects_bad_parameters(kwargs, error, message):
    with pytest.raises(error, match=message):
        IndexDecoder(**kwargs)
    gc.collect()  # report the half-built component while the warning filter is active

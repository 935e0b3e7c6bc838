"""Amaranth-simulator helpers shared by the hardware unit tests: a stream producer with random
idle gaps, a stream consumer with random backpressure that also checks the stream rules, and
cycle bookkeeping; :func:`run_stream` runs one of each against a component, :func:`run_tile` loads
and runs a tile.

Both helpers advance one clock edge per loop iteration and count edges from the start of the
simulation, so the cycle numbers they record are comparable: "cycle ``c``" is the clock period
that ends with edge ``c + 1``, and a transfer in cycle ``c`` means ``valid & ready`` were high
just before that edge.
"""

__all__ = ["produce", "consume", "check_stream_rules", "check_all_taken", "StreamMonitor",
           "internal_streams", "run_stream", "run_tile", "offchip_memory", "carry_stream",
           "run_pe_job",
           "run_decompressor_job", "run_tile_job", "run_stream_tile_job"]


def _raw(value):
    # Stream payloads with a data layout are views; the helpers move whole words.
    return value.as_value() if hasattr(value, "as_value") else value


async def produce(ctx, stream, words, *, rng=None, gap_prob=0.0, cycles=None,
                  idle_timeout=10_000):
    """Offer ``words`` on ``stream`` in order, idling a random cycle before a word with
    probability ``gap_prob``. Appends the cycle of each transfer to ``cycles`` if given. Fails
    ("timed out") when one word waits ``idle_timeout`` cycles for ``ready`` (see
    :func:`consume`)."""
    cycle = 0
    payload = _raw(stream.payload)
    for n, word in enumerate(words):
        while rng is not None and gap_prob and rng.random() < gap_prob:
            ctx.set(stream.valid, 0)
            await ctx.tick()
            cycle += 1
        ctx.set(stream.valid, 1)
        ctx.set(payload, word)
        for _ in range(idle_timeout):
            # Sampled at the edge: ready may depend combinationally on signals that another
            # testbench sets in the same cycle (o.ready of a pass-through stage).
            _, _, ready = await ctx.tick().sample(stream.ready)
            cycle += 1
            if ready:
                break
        else:
            raise AssertionError(f"timed out: word {n} of {len(words)} not taken in "
                                 f"{idle_timeout} cycles (cycle {cycle})")
        if cycles is not None:
            cycles.append(cycle - 1)
    ctx.set(stream.valid, 0)


def check_stream_rules(pending, valid, ready, word, when, *, name=None):
    """One cycle of the stream rules, as sampled at a clock edge: a payload ``pending`` since a
    stalled cycle (valid and not ready) must still be offered, unchanged. Returns the payload
    now pending (None after a transfer or while idle).

    Raises
    ------
    AssertionError
        Naming the stream (``name``), ``when`` and the rule broken.
    """
    where = f"{name}: " if name else ""
    if pending is not None:
        assert valid, f"{where}valid dropped without a transfer in {when}"
        assert word == pending, (f"{where}payload changed without a transfer in {when}: "
                                 f"{pending:#x} -> {word:#x}")
    return word if valid and not ready else None


async def consume(ctx, stream, count, *, rng=None, stall_prob=0.0, received=None, cycles=None,
                  idle_timeout=10_000):
    """Take ``count`` transfers from ``stream`` with ``ready`` randomly low (probability
    ``stall_prob``), appending payloads to ``received`` and transfer cycles to ``cycles``.

    Asserts the stream rules on the way: once ``valid`` is high it stays high, with the same
    payload, until the transfer; and fails ("timed out") after ``idle_timeout`` cycles in a row
    without ``valid``. The default (this project's choice) is far above the longest legitimate
    gap in the unit tests (a tile's fill, ``C + recon_cycles + 4``), so a design that has stopped
    fails in seconds, not after minutes of simulation.
    """
    payload = _raw(stream.payload)
    cycle, idle, pending = 0, 0, None
    while count:
        ready = not (rng is not None and stall_prob and rng.random() < stall_prob)
        ctx.set(stream.ready, int(ready))
        _, _, valid, word = await ctx.tick().sample(stream.valid, payload)
        pending = check_stream_rules(pending, valid, ready, word, f"cycle {cycle}")
        if valid and ready:
            if received is not None:
                received.append(word)
            if cycles is not None:
                cycles.append(cycle)
            count -= 1
        cycle += 1
        idle = 0 if valid else idle + 1
        assert idle < idle_timeout, (f"timed out: no valid for {idle_timeout} cycles (cycle "
                                     f"{cycle}) with {count} transfers missing")
    ctx.set(stream.ready, 0)


def internal_streams(fragment):
    """``{path: stream}`` for every stream member of every component below the elaborated
    ``fragment`` (the top's own members excluded: its benches drive them), ``path`` like
    ``"pe0.accumulators.o"``."""
    from amaranth.lib import stream as lib_stream
    from amaranth.lib import wiring

    found = {}

    def walk(frag, prefix):
        for sub, name, *_ in frag.subfragments:
            path = f"{prefix}{name}"
            for origin in getattr(sub, "origins", ()):
                if isinstance(origin, wiring.Component):
                    for member_name, member in origin.signature.members.items():
                        if (member.is_port or not isinstance(member.signature,
                                                             lib_stream.Signature)):
                            continue
                        found[f"{path}.{member_name}"] = getattr(origin, member_name)
            walk(sub, f"{path}.")

    walk(fragment, "")
    return found


class StreamMonitor:
    """Checks the stream rules on many streams at once, from background testbenches: once
    ``valid`` is high without ``ready``, ``valid`` and the payload hold until the transfer.
    Raises ``AssertionError`` naming the stream and the cycle at the first violation.

    :meth:`attach` watches every internal stream of an elaborated design
    (:func:`internal_streams`); :attr:`transfers` counts the transfers checked per stream.
    """

    def __init__(self):
        self.transfers = {}

    @property
    def total(self):
        """Transfers checked on all streams."""
        return sum(self.transfers.values())

    def attach(self, sim, fragment):
        """Add one background testbench per internal stream of ``fragment`` to ``sim``."""
        for name, stream in internal_streams(fragment).items():
            sim.add_testbench(self.watch(name, stream), background=True)

    def watch(self, name, stream):
        """A testbench that checks ``stream`` (called ``name`` in messages) every cycle."""
        self.transfers.setdefault(name, 0)
        payload = _raw(stream.payload)

        async def bench(ctx):
            cycle, pending = 0, None
            async for _, _, valid, ready, word in ctx.tick().sample(stream.valid, stream.ready,
                                                                   payload):
                pending = check_stream_rules(pending, valid, ready, word,
                                             f"cycle {cycle}", name=name)
                if valid and ready:
                    self.transfers[name] += 1
                cycle += 1
        return bench


def run_stream(dut, words, count, *, rng=None, gap_prob=0.0, stall_prob=0.0, i=None, o=None,
               setup=None, finish=None):
    """Simulate ``dut`` with :func:`produce` offering ``words`` on ``i`` (default ``dut.i``) and
    :func:`consume` taking ``count`` transfers from ``o`` (default ``dut.o``), both drawing from
    ``rng``. ``setup(ctx)`` runs in the producer before the first word; ``await finish(ctx)``
    runs in the consumer after the last transfer. Returns ``(received, in_cycles,
    out_cycles)``."""
    from amaranth.sim import Simulator

    i = dut.i if i is None else i
    o = dut.o if o is None else o
    received, in_cycles, out_cycles = [], [], []

    async def producer(ctx):
        if setup is not None:
            setup(ctx)
        await produce(ctx, i, words, rng=rng, gap_prob=gap_prob, cycles=in_cycles)

    async def consumer(ctx):
        await consume(ctx, o, count, rng=rng, stall_prob=stall_prob, received=received,
                      cycles=out_cycles)
        if finish is not None:
            await finish(ctx)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    # The run ends with the consumer: a design that gives all its outputs without taking all its
    # inputs fails below instead of leaving the producer waiting for ever.
    sim.add_testbench(producer, background=True)
    sim.add_testbench(consumer)
    sim.run()
    check_all_taken("i", len(in_cycles), len(words))
    return received, in_cycles, out_cycles


def check_all_taken(name, taken, offered):
    """Asserts that a design took all ``offered`` words of its input stream ``name`` by the time
    it gave its last output (a causal design always does)."""
    assert taken == offered, (f"the design gave all its outputs but took only {taken} of the "
                              f"{offered} words offered on {name}")


def run_tile(dut, *, load, layer, tokens, blocks, rng=None, gap_prob=0.0, stall_prob=0.0, runs=1,
             streams=None, monitor=None, inputs=(), background=()):
    """Simulate a tile (:class:`~hw.tile.GoboTile` or alike): offer the ``streams`` ``{member
    name: words}`` (all at once, e.g. the compressed weights of
    :class:`~hw.compressed_mac_tile.CompressedMacTile`), then the ``load`` beats, with ``layer``
    set from the start, and ``runs`` times pulse ``start`` and take the ``blocks * tokens``
    output beats. A :class:`StreamMonitor` (``monitor``, or a fresh one) checks the stream rules
    on every internal stream all along. ``inputs`` are more ``(signal, value)`` pairs set with
    ``layer``, ``background`` more testbenches run beside (e.g. an off-chip memory,
    :func:`offchip_memory`). Returns ``[(Y (blocks*P, T) int64, counters word)]`` per run."""
    import numpy as np
    from amaranth.hdl import Fragment
    from amaranth.sim import Simulator

    from golden.hwmodel.packing import tile_output_fields, unpack

    config = dut.config
    out_fields = tile_output_fields(config)
    pending = dict(streams or {})
    results = []

    def streamer(name, words):
        async def bench(ctx):
            await produce(ctx, getattr(dut, name), words, rng=rng, gap_prob=gap_prob)
            del pending[name]
        return bench

    async def bench(ctx):
        ctx.set(dut.layer.as_value(), layer)    # before the first edge: the streams may need it
        for signal, value in inputs:
            ctx.set(signal, value)
        while pending:
            await ctx.tick()
        await produce(ctx, dut.load, load, rng=rng, gap_prob=gap_prob)
        for _ in range(runs):
            await ctx.tick()
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            assert ctx.get(dut.busy), "busy must rise the cycle after start"
            received = []
            await consume(ctx, dut.o, blocks * tokens, rng=rng, stall_prob=stall_prob,
                          received=received)
            assert not ctx.get(dut.busy), "busy must fall after the last output"
            assert not ctx.get(dut.o.valid), "no output beyond the last slot"
            y = np.zeros((blocks * config.pes, tokens), dtype=np.int64)
            for s, word in enumerate(received):
                b, t = divmod(s, tokens)
                y[b * config.pes:(b + 1) * config.pes, t] = unpack(out_fields, word)["outputs"]
            results.append((y, ctx.get(dut.counters.as_value())))

    fragment = Fragment.get(dut, None)
    sim = Simulator(fragment)
    (StreamMonitor() if monitor is None else monitor).attach(sim, fragment)
    sim.add_clock(1e-8)
    for name, words in pending.items():
        sim.add_testbench(streamer(name, words))
    for extra in background:
        sim.add_testbench(extra, background=True)
    sim.add_testbench(bench)
    sim.run()
    return results


def offchip_memory(dut, port):
    """A testbench that plays the off-chip memory behind ``dut.axi`` (AXI4 read channels) for
    one run, cycle by cycle, as ``port`` (a :class:`golden.hwmodel.offchip.OffchipPort` with the
    layer's bytes) says: idle until ``dut.busy`` rises, then ``port``'s cycle 0 is the run's
    first cycle, so its stalls and bandwidth are the cycle model's."""
    axi = dut.axi

    async def bench(ctx):
        ctx.set(axi.arready, 0)
        ctx.set(axi.rvalid, 0)
        while True:
            await ctx.tick()
            if ctx.get(dut.busy):
                break
        while True:
            arready, beat = port.outputs()
            ctx.set(axi.arready, int(arready))
            ctx.set(axi.rvalid, int(beat is not None))
            if beat is not None:
                ctx.set(axi.rdata, port.beat_data(beat[0]))
                ctx.set(axi.rlast, int(beat[1]))
            _, _, arvalid, araddr, arlen, rready = await ctx.tick().sample(
                axi.arvalid, axi.araddr, axi.arlen, axi.rready)
            port.clock(arvalid, araddr, arlen, rready)
    return bench


def carry_stream(dut, beats, schedule):
    """A testbench that offers ``beats`` (packed :func:`golden.hwmodel.packing.
    tile_output_fields` words) on ``dut.carry`` for one run, beat ``k`` from the run's cycle
    ``schedule`` says on (a :class:`golden.hwmodel.passes.CarrySchedule`; cycle 0 is the first
    cycle ``busy`` is high, as :func:`offchip_memory`'s), held until taken."""
    carry = dut.carry

    async def bench(ctx):
        ctx.set(carry.valid, 0)
        while True:
            await ctx.tick()
            if ctx.get(dut.busy):
                break
        cycle, k = 0, 0
        while k < len(beats):
            valid = schedule.available(k, cycle)
            ctx.set(carry.valid, int(valid))
            if valid:
                ctx.set(_raw(carry.payload), beats[k])
            _, _, ready = await ctx.tick().sample(carry.ready)
            k += valid and ready
            cycle += 1
        ctx.set(carry.valid, 0)
    return bench


# Harnesses of the design registry (hw.designs): one bench job in, what the design did out -------

def _job_rng(job):
    import numpy as np
    return np.random.default_rng(job.get("seed", 1))


def run_pe_job(dut, job, design=None):
    """A PE-shaped job (:mod:`golden.hwmodel.pe_jobs`: ``beats``, ``centroids`` or None) on
    ``dut``, with the job's gap and backpressure probabilities. Returns ``{"outputs": [signed
    int per row], "cycles": first input to last output}``, the bench's own measures."""
    from golden.hwmodel.packing import centroids_fields, pack

    beats = [int(b, 16) for b in job["beats"]]

    def setup(ctx):
        if job.get("centroids") is not None:
            word = pack(centroids_fields(dut.config), {"centroids": job["centroids"]})
            ctx.set(dut.centroids.as_value(), word)

    received, in_cycles, out_cycles = run_stream(
        dut, beats, len(job["expected"]), rng=_job_rng(job), gap_prob=job["gap_probability"],
        stall_prob=job["backpressure_probability"], setup=setup)
    return {"outputs": [int(v) for v in received], "cycles": out_cycles[-1] - in_cycles[0] + 1}


def run_decompressor_job(dut, job, design=None):
    """A decompressor job (:func:`golden.hwmodel.pe_jobs.decompressor_job`: ``streams`` ``i``
    and ``outliers``, the ``centroids`` word) on ``dut``. Returns ``{"outputs": [output
    words]}``."""
    from amaranth.sim import Simulator

    rng = _job_rng(job)
    gap, stall = job["gap_probability"], job["backpressure_probability"]
    streams = {name: [int(w, 16) for w in words] for name, words in job["streams"].items()}
    received = []

    taken = {name: [] for name in streams}

    def producer(name):
        async def bench(ctx):
            if name == "i":
                ctx.set(dut.centroids.as_value(), int(job["centroids"], 16))
            await produce(ctx, getattr(dut, name), streams[name], rng=rng, gap_prob=gap,
                          cycles=taken[name])
        return bench

    async def consumer(ctx):
        await consume(ctx, dut.o, len(job["expected"]), rng=rng, stall_prob=stall,
                      received=received)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    for name in streams:
        sim.add_testbench(producer(name), background=True)
    sim.add_testbench(consumer)
    sim.run()
    for name, words in streams.items():
        check_all_taken(name, len(taken[name]), len(words))
    return {"outputs": [format(int(w), "x") for w in received]}


def run_stream_tile_job(dut, job, design=None):
    """A streaming tile job (:func:`golden.hwmodel.tile_jobs.stream_tile_job`) on ``dut`` (a
    :class:`~hw.stream_tile.StreamTile`), its off-chip memory played by :func:`offchip_memory`
    from the job's memory parameters and bytes. Returns as :func:`run_tile_job`."""
    from golden.hwmodel.offchip import OffchipMemory, OffchipPort
    from golden.hwmodel.packing import stream_counters_fields

    if job.get("carry") is not None:     # its carry is the previous job's outputs
        raise ValueError(f"{job['name']}: a pass with a carry runs after the pass before it, on "
                         f"the cocotb bench (sim/stream_tile_bench.py) or with carry_stream")
    port = OffchipPort(OffchipMemory(**job["memory"]), bytes.fromhex(job["offchip"]),
                       base=job["base"])
    return _tile_observed(dut, job, stream_counters_fields(dut.config), streams=None,
                          inputs=[(dut.base, job["base"])], background=[offchip_memory(dut, port)])


def run_tile_job(dut, job, design=None):
    """A tile job (:mod:`golden.hwmodel.tile_jobs`) on ``dut``: its streams, load beats and
    ``layer`` word, one run. Returns ``{"outputs": [[P values] per slot], "counters": {...}}``
    in the job's form (``counters`` only for a job with ``expected_counters``)."""
    from golden.hwmodel.packing import counters_fields

    return _tile_observed(
        dut, job, counters_fields(dut.config),
        streams={k: [int(w, 16) for w in v] for k, v in job.get("streams", {}).items()})


def _tile_observed(dut, job, fields, **options):
    """One run of a tile job; ``{"outputs", "counters"}`` with the counters unpacked by
    ``fields``."""
    from golden.hwmodel.packing import unpack

    config = dut.config
    tokens = job["tokens"]
    blocks = len(job["expected"]) // tokens
    ((y, word),) = run_tile(
        dut, load=[int(b, 16) for b in job["load"]], layer=int(job["layer"], 16),
        tokens=tokens, blocks=blocks, rng=_job_rng(job), gap_prob=job["gap_probability"],
        stall_prob=job["backpressure_probability"], **options)
    pes = config.pes
    outputs = [[int(v) for v in y[b * pes:(b + 1) * pes, t]]
               for b in range(blocks) for t in range(tokens)]
    counters = unpack(fields, word)
    observed = {"outputs": outputs}
    if job.get("expected_counters") is not None:
        observed["counters"] = {k: counters[k] for k in job["expected_counters"]}
    return observed

"""The parameters of the hardware components, validated one way (amaranth-soc style).

Every component takes keyword parameters and checks them at once in its constructor, before it
builds its signature: a ``TypeError`` for a wrong type, a ``ValueError`` for a wrong value, the
message naming the parameter (``"config must be a GoboConfig, not 3"``, ``"weight_bits must be an
integer between 2 and 32, not 40"``, ``"memories must be one of 'internal', 'ports', not 'x'"``).
The checks themselves are :mod:`golden.config`'s (:func:`~golden.config.check_config`,
:func:`~golden.config.check_weight_bits`, ...), shared with the golden models; the mixins below
store the parameters privately and expose them as read-only properties.
"""

from amaranth.hdl import Shape

from golden.config import check_choice, check_config, check_weight_bits

from .tile_memories import MEMORY_PLACES

__all__ = ["ConfigParams", "MacParams", "check_memories", "check_shape", "check_latency",
           "check_one_pass"]


def check_one_pass(config):
    """Refuse ``config.max_passes > 1`` (ValueError) in a tile that has no passes: only the
    streaming GOBO tile (:class:`~hw.stream_tile.StreamTile`) carries partial sums."""
    if config.max_passes > 1:
        raise ValueError(f"max_passes={config.max_passes}: passes are built only in the "
                         f"streaming GOBO tile (hw.stream_tile.StreamTile)")
    return config


def check_memories(memories):
    """Return ``memories`` if it is one of :data:`~hw.tile_memories.MEMORY_PLACES`.

    Raises
    ------
    TypeError, ValueError
        ``"memories must be one of 'internal', 'ports', not 'x'"``.
    """
    return check_choice("memories", memories, MEMORY_PLACES)


def check_shape(name, value):
    """Return ``value`` if Amaranth can cast it to a shape (``unsigned(3)``, ``signed(8)``, a
    layout, ...).

    Raises
    ------
    TypeError
        Otherwise: ``"element must be a shape, not 'x'"``.
    """
    try:
        Shape.cast(value)
    except TypeError:
        raise TypeError(f"{name} must be a shape, not {value!r}") from None
    return value


def check_latency(component, structural):
    """Raise ``RuntimeError`` unless ``component.latency`` (the configuration's value) equals
    ``structural``, the depth an ``elaborate`` counts from its own stages or sub-components."""
    if component.latency != structural:
        raise RuntimeError(f"{type(component).__name__} declares latency {component.latency} "
                           f"but its pipeline takes {structural} cycles")


class ConfigParams:
    """Mixin of the components built from a :class:`~golden.config.GoboConfig`: call
    ``_init_config(config)`` first thing in the constructor."""

    def _init_config(self, config):
        self._config = check_config(config)

    @property
    def config(self):
        """The :class:`~golden.config.GoboConfig` the component was built from (read-only)."""
        return self._config


class MacParams(ConfigParams):
    """Mixin of the MAC baseline components, built from a configuration and the width of a dense
    signed weight: call ``_init_mac(config, weight_bits)`` first thing in the constructor."""

    def _init_mac(self, config, weight_bits):
        self._init_config(config)
        self._weight_bits = check_weight_bits(weight_bits)

    @property
    def weight_bits(self):
        """Width of a dense signed weight, 2 to 32 (read-only)."""
        return self._weight_bits

"""Amaranth data layouts built from the packed formats of :mod:`golden.hwmodel.packing`.

``golden.hwmodel.packing`` defines each packed format once, as an ordered list of
:class:`~golden.hwmodel.packing.Field` (least significant first). This module turns such a list into an
:class:`amaranth.lib.data.StructLayout` with the same bit placement, so the hardware, the golden
model and the testbenches read the same bits the same way:

- a field of ``count == 1`` becomes ``signed(width)`` or ``unsigned(width)``;
- a field of ``count > 1`` becomes ``ArrayLayout(signed/unsigned(width), count)``, element 0 at the
  lowest bits, exactly as :func:`golden.hwmodel.packing.pack` places it.
"""

from amaranth.hdl import signed, unsigned
from amaranth.lib import data

from golden.hwmodel.packing import mac_input_fields, pe_input_fields

__all__ = ["field_shape", "struct_layout", "pe_input_layout", "mac_input_layout",
           "centroids_layout"]


def field_shape(field):
    """The Amaranth shape of one :class:`~golden.hwmodel.packing.Field`."""
    if not isinstance(field.width, int) or isinstance(field.width, bool) or field.width < 1:
        raise ValueError(f"field {field.name!r} width must be a positive integer, "
                         f"not {field.width!r}")
    if not isinstance(field.count, int) or isinstance(field.count, bool) or field.count < 1:
        raise ValueError(f"field {field.name!r} count must be a positive integer, "
                         f"not {field.count!r}")
    elem = signed(field.width) if field.signed else unsigned(field.width)
    return data.ArrayLayout(elem, field.count) if field.count > 1 else elem


def struct_layout(fields):
    """A :class:`~amaranth.lib.data.StructLayout` whose fields follow ``fields`` in order from
    bit 0, so that its bits equal :func:`golden.hwmodel.packing.pack` of the same list."""
    members = {}
    for field in fields:
        if field.name in members:
            raise ValueError(f"field name {field.name!r} appears twice")
        members[field.name] = field_shape(field)
    return data.StructLayout(members)


def pe_input_layout(config):
    """Payload of one PE input beat: ``indexes``, ``acts`` and ``last``
    (see :func:`golden.hwmodel.packing.pe_input_fields`)."""
    return struct_layout(pe_input_fields(config))


def mac_input_layout(config, weight_bits):
    """Payload of one MAC baseline PE input beat: ``weights``, ``acts`` and ``last``
    (see :func:`golden.hwmodel.packing.mac_input_fields`)."""
    return struct_layout(mac_input_fields(config, weight_bits))


def centroids_layout(config, bits=None):
    """A dictionary of ``config.n_centroids`` signed centroids of ``bits`` bits each (default
    ``config.centroid_bits``), element ``k`` at bits ``k*bits`` up."""
    bits = config.centroid_bits if bits is None else bits
    return data.ArrayLayout(signed(bits), config.n_centroids)

"""Narrowing a trained transform: where the fast decoder and the fast encoder start.

A narrower copy of g_s or g_a keeps, in each hidden layer, the channels the next layer reads most
(the largest norm of their outgoing weights), with their filters, their rows and columns of
(inverse) GDN and their rows of the modulation (q0 for g_s, the quality map's SFT for g_a). It
codes recognisably from step 0, where a random start would spend much of a CPU budget relearning
what the wide transform knows.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def outgoing_norms(next_conv: nn.Module) -> torch.Tensor:
    """Norm of the weights by which `next_conv` reads each of its input channels."""
    weight = next_conv.weight  # conv: out × in × k × k; transposed conv: in × out × k × k
    by_input = weight if isinstance(next_conv, nn.ConvTranspose2d) else weight.transpose(0, 1)
    return by_input.flatten(1).norm(dim=1)


@torch.no_grad()
def copy_narrowed_layers(wide_convs: Sequence[nn.Module], narrow_convs: Sequence[nn.Module],
                         wide_gdns: Sequence[nn.Module], narrow_gdns: Sequence[nn.Module],
                         wide_modulations: Sequence[nn.Module], narrow_modulations: Sequence[nn.Module]) -> None:
    """Fill a chain conv → GDN → modulation → … → conv of narrower hidden widths (those of
    `narrow_convs`) from the wide chain, keeping each hidden layer's most-read channels."""
    kept_in = torch.arange(wide_convs[0].in_channels)
    for i, (wide, narrow) in enumerate(zip(wide_convs, narrow_convs)):
        last = i == len(wide_convs) - 1
        if last:
            kept = torch.arange(wide.out_channels)
        else:
            kept = outgoing_norms(wide_convs[i + 1]).topk(narrow.out_channels).indices.sort().values
        if isinstance(wide, nn.ConvTranspose2d):
            narrow.weight.copy_(wide.weight[kept_in][:, kept])
        else:
            narrow.weight.copy_(wide.weight[kept][:, kept_in])
        narrow.bias.copy_(wide.bias[kept])
        if not last:
            narrow_gdns[i].beta.copy_(wide_gdns[i].beta[kept])
            narrow_gdns[i].gamma.copy_(wide_gdns[i].gamma[kept][:, kept])
            for name, child in wide_modulations[i].named_children():
                target = getattr(narrow_modulations[i], name)
                if name in ("gamma", "beta"):  # one row per modulated channel
                    target.weight.copy_(child.weight[kept])
                    target.bias.copy_(child.bias[kept])
                else:  # the part that reads the condition, shared by all channels
                    target.load_state_dict(child.state_dict())
        kept_in = kept

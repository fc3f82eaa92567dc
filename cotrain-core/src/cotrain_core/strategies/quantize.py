"""Pseudo-gradient quantization for DiLoCo's outer all-reduce: int8 or fp8 (e4m3) with per-chunk scales.

    codes, scales = quantize(x, "int8")       # x: flat fp32; codes: uint8 view, scales: fp32 per chunk
    y = dequantize(codes, scales, "int8", n)  # fp32 [n]; the error x - y is the caller's residual
    work = AllGather(codes, scales, group, "int8", n)  # async: every peer's codes and scales
    total = work.result()                     # sum of every peer's dequantized values, fp32

A SUM all-reduce of int8 values overflows and peers quantize with different scales, so the peers
all-gather codes and scales and each sums the dequantized values in fp32 in rank order: every peer
gets the same bitwise sum. Codes travel as uint8 (gloo has no fp8 type).
"""

import math

CHUNK = 4096  # values per scale: 4 bytes of scale per 4096 one-byte codes (0.1 % overhead)
_MAX = {"int8": 127.0, "fp8": 448.0}  # largest code magnitude (fp8 e4m3fn: 448)


def _dtype(kind: str):
    import torch

    return torch.int8 if kind == "int8" else torch.float8_e4m3fn


def quantize(x, kind: str):
    """(codes as uint8 [x.numel()], fp32 scales [chunks]) of flat fp32 x."""
    import torch

    chunks = max(1, math.ceil(x.numel() / CHUNK))
    padded = torch.nn.functional.pad(x, (0, chunks * CHUNK - x.numel())).view(chunks, CHUNK)
    scales = padded.abs().amax(dim=1).div_(_MAX[kind])
    scales[scales == 0] = 1.0  # an all-zero chunk: any scale gives zero codes
    scaled = padded / scales[:, None]
    codes = scaled.round_().clamp_(-127, 127).to(torch.int8) if kind == "int8" else scaled.to(_dtype(kind))
    return codes.view(torch.uint8).reshape(-1)[: x.numel()], scales


def dequantize(codes, scales, kind: str, n: int):
    """fp32 [n] values of uint8 `codes` and their per-chunk `scales`."""
    import torch

    padded = torch.nn.functional.pad(codes, (0, scales.numel() * CHUNK - n))  # zero codes
    values = padded.view(_dtype(kind)).float().view(scales.numel(), CHUNK) * scales[:, None]
    return values.reshape(-1)[:n]


class AllGather:
    """An all-gather of codes and scales in flight; result() sums the peers' values in rank order."""

    def __init__(self, codes, scales, group, kind: str, n: int):
        import torch
        import torch.distributed as dist

        self.kind, self.n = kind, n
        peers = dist.get_world_size(group)
        self.codes = [torch.empty_like(codes) for _ in range(peers)]
        self.scales = [torch.empty_like(scales) for _ in range(peers)]
        self.works = [
            dist.all_gather(self.codes, codes, group=group, async_op=True),
            dist.all_gather(self.scales, scales, group=group, async_op=True),
        ]

    def result(self):
        for work in self.works:
            work.wait()
        total = dequantize(self.codes[0], self.scales[0], self.kind, self.n)
        for codes, scales in zip(self.codes[1:], self.scales[1:], strict=True):
            total += dequantize(codes, scales, self.kind, self.n)
        return total

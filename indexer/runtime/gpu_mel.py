"""The log-mel frontend as a few batched ops on a GPU (`--device cuda`).

indexer.mel.LogMelFrontend is written for CPUs: one window at a time, in cache-sized chunks,
with float64 redone for the frames where float32 would be off. On a GPU the same numbers come
from one batched `torch.stft` in float64 (periodic Hann, centred reflect padding, power 2),
the checkpoint's own mel filters and 10*log10 with the same floor: a batch of windows costs a
few kernel launches, so decoding workers hand raw windows over and the GPU stays busy with
both the frontend and the model. float64 keeps it as exact as the CPU frontend (tests compare
the two on the CPU, where this module runs too).
"""

from __future__ import annotations

import numpy as np


class BatchedLogMel:
    """(B, L) float32 waveforms on any torch device -> (B, 1 + L // hop, n_mels) float32 log-mel."""

    def __init__(self, frontend, device: str = "cpu"):
        import torch

        self.device = torch.device(device)
        # The filters and parameters of the CPU frontend, so both compute one definition.
        self.n_fft, self.hop = frontend.n_fft, frontend.hop_length
        self.dtype = dtype = torch.float64
        self.filters = torch.as_tensor(np.asarray(frontend.filters), dtype=dtype, device=self.device)
        self.window = torch.as_tensor(np.hanning(self.n_fft + 1)[:-1], dtype=dtype, device=self.device)

    def __call__(self, waveforms):
        import torch

        from ..mel import MEL_FLOOR

        x = torch.as_tensor(waveforms).to(self.device, self.dtype)
        with torch.inference_mode():
            spec = torch.stft(x, self.n_fft, self.hop, window=self.window, center=True, pad_mode="reflect",
                              return_complex=True)
            power = spec.real.square() + spec.imag.square()          # (B, n_fft/2 + 1, T)
            mel = power.transpose(1, 2) @ self.filters                 # (B, T, n_mels)
            return (10.0 * mel.clamp(min=MEL_FLOOR).log10()).float()


def repeat_pad(x, n: int):
    """indexer.windowing.repeat_pad on torch rows (k, m), m < n: each row tiled int(n / m) times,
    then zero-padded to n, on the device the rows are on (the same values: copies and zeros)."""
    import torch

    tiled = x.repeat(1, n // x.shape[-1])
    return torch.nn.functional.pad(tiled, (0, n - tiled.shape[-1]))

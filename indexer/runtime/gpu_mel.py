"""What the audio tower does differently on a GPU (`--device cuda`).

The log-mel frontend as a few batched ops (BatchedLogMel): indexer.mel.LogMelFrontend is
written for CPUs: one window at a time, in cache-sized chunks, with float64 redone for the
frames where float32 would be off. On a GPU the same numbers come from one batched
`torch.stft` in float64 (periodic Hann, centred reflect padding, power 2), the checkpoint's
own mel filters and 10*log10 with the same floor: a batch of windows costs a few kernel
launches, so decoding workers hand raw windows over (`upload` copies them as they come) and
the GPU stays busy with both the frontend and the model. float64 keeps it as exact as the CPU
frontend (tests compare the two on the CPU, where this module runs too).

One batch shape for every model call: `in_fixed_batches`.
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


def upload(windows, device: str):
    """(k, 480000) float32 numpy windows -> a tensor on `device` (no copy on the CPU), so that
    a batch is stacked there rather than hundreds of MB on the CPU first. A shorter (1, n) part
    is a short file's real samples, repeat-padded here as indexer.windowing.repeat_pad does."""
    import torch

    from ..config import WINDOW_SAMPLES

    x = torch.from_numpy(windows).to(device)
    return repeat_pad(x, WINDOW_SAMPLES) if x.shape[-1] < WINDOW_SAMPLES else x


def in_fixed_batches(run, x, longer, size: int):
    """run(x, longer) in calls of exactly `size` windows, the last one zero-padded; the rows of
    the pads dropped. On CUDA, cuDNN and cuBLAS choose their kernels by shape, and a window's
    vector moved with its batch's size while the batch's order changed no bit (docs/runtime.md,
    "Fidelity"): one shape for every call keeps a window's vector the same in any batch."""
    import torch

    out = []
    for i in range(0, x.shape[0], size):
        part, lg = x[i:i + size], longer[i:i + size]
        k = part.shape[0]
        if k < size:  # pads of the call's own kind: a call holds longer windows or none
            part = torch.cat([part, part.new_zeros((size - k, *part.shape[1:]))])
            lg = np.concatenate([lg, np.full(size - k, bool(lg.all()))])
        out.append(run(part, lg)[:k])
    return np.concatenate(out)

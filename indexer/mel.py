"""The CLAP audio frontend: a batched torch log-mel that reproduces ClapFeatureExtractor.

transformers' ClapFeatureExtractor computes its log-mel one frame at a time in numpy
(float64), slowly. This module computes the same numbers (within 1e-3 dB) in torch, several
times faster on one thread (docs/benchmarks.md, "mel frontend"):

    periodic Hann, n_fft 1024, hop 480, centred reflect padding, |STFT|^2,
    mel filters, max(1e-10, .), 10*log10  ->  (B, 1 + L // hop, n_mels)

Precision: a float32 FFT is dB off wherever a band lies ~140 dB under its frame's energy
(loud pure tones, sweeps, DC, brown noise), because its rounding noise swamps bands the
float64 reference resolves just above the -100 dB floor. So each window is probed on every
32nd frame and takes one of three routes: float32 (most audio); float32 on circularly
differenced frames, undone in the filters (audio whose energy sits at low frequencies:
rumble, brown noise; differencing whitens it, so float32 noise no longer swamps its high
bands); float64 throughout where most frames would fail both (tones, sweeps: the FFT is
~2x dearer, but float32 first would be wasted). On the float32 routes the few frames whose
predicted error exceeds `guard_db` are redone in float64. Only the window's own samples
decide, so a window's output does not depend on its batch.

The two checkpoint families differ only in the filter bank (`indexer.melfilters`, numpy):
fused checkpoints (truncation "fusion") use HTK-scale filters without normalisation,
unfused ones ("rand_trunc") Slaney-scale filters with Slaney area normalisation.

Only the log-mel before stacking is reproduced (`_np_extract_fbank_features`): the
stacking into 4 channels for fusion and `is_longer` belong to the encoder.
"""

from __future__ import annotations

import os
import threading

from typing import Any, Mapping

import numpy as np
import torch

# The settings (and the fingerprint) live in the torch-free melconfig; re-exported here.
from .melconfig import FE_DEFAULTS as _FE_DEFAULTS  # noqa: F401
from .melconfig import FRONTEND_VERSION, MEL_FLOOR, filter_kind, frontend_settings, params_from_config  # noqa: F401
from .melfilters import mel_filter_bank  # used below, and callers still reach it as mel.mel_filter_bank

_EPS32_SQ = float(np.finfo(np.float32).eps / 2) ** 2  # unit roundoff of float32, squared


class LogMelFrontend:
    """Batched log-mel in dB: (B, L) float32 waveforms -> (B, 1 + L // hop, n_mels) float32."""

    def __init__(
        self,
        *,
        n_mels: int = 64,
        sampling_rate: int = 48_000,
        n_fft: int = 1024,
        hop_length: int = 480,
        f_min: float = 50.0,
        f_max: float = 14_000.0,
        truncation: str = "fusion",
    ):
        self.n_mels = int(n_mels)
        self.sampling_rate = int(sampling_rate)
        self.n_fft = int(n_fft)
        self.hop_length = int(hop_length)
        self.f_min = float(f_min)
        self.f_max = float(f_max)
        self.truncation = str(truncation)
        self.norm, self.mel_scale = filter_kind(self.truncation)

        filters = mel_filter_bank(
            self.n_fft // 2 + 1, self.n_mels, self.f_min, self.f_max, self.sampling_rate,
            norm=self.norm, mel_scale=self.mel_scale,
        )
        self.filters = filters  # float64, full (n_fft // 2 + 1, n_mels), for inspection and tests
        # Bins above the last non-zero filter row contribute nothing: never compute them.
        used = np.flatnonzero(filters.any(axis=1))
        self.n_bins = int(used[-1]) + 1 if used.size else 1
        self._filters = torch.from_numpy(filters[: self.n_bins].astype(np.float32))
        # Periodic Hann, as window_function(n_fft, "hann") (np.hanning(n + 1)[:-1]).
        # Kept in float64: a window rounded to float32 alone leaks a tone ~140 dB down.
        self._window = torch.from_numpy(np.hanning(self.n_fft + 1)[:-1])
        self._window32 = self._window.to(torch.float32)
        self._dwindow32 = (self._window - self._window.roll(1)).to(torch.float32)  # w[t] - w[t-1]
        assert self._window[0] == 0.0  # _diff_frames relies on it
        self._filter_mass = self._filters.sum(0)  # (n_mels,) float32
        self._mel_blocks = self._block_filters(self._filters, self.mel_block)
        # The differenced route (see _diff_frames): filters divided by |1 - e^(-2 pi i k / n_fft)|^2
        # undo the difference in power. Bin 0 is lost by differencing: only if no filter uses it.
        self._diff_blocks = self._diff_mass = None
        if not filters[0].any():
            k = np.arange(1, self.n_bins)
            gain = 4.0 * np.sin(np.pi * k / self.n_fft) ** 2
            diff_filters = np.zeros((self.n_bins, self.n_mels))
            diff_filters[1:] = filters[1 : self.n_bins] / gain[:, None]
            diff_filters = torch.from_numpy(diff_filters.astype(np.float32))
            # On brown noise the differenced route's errors run well past what the noise model
            # predicts (the plain route's stay near it): its check takes a 16x larger mass (4x
            # the error), which keeps both routes' errors alike (docs/benchmarks.md).
            self._diff_mass = diff_filters.sum(0) * 16.0
            self._diff_blocks = self._block_filters(diff_filters, self.mel_block)
            # Energy of the differenced frame from the plain spectrum's (re^2, im^2) pairs
            # (Parseval for a one-sided spectrum: the inner bins count twice).
            k = np.arange(self.n_fft // 2 + 1)
            parseval = 4.0 * np.sin(np.pi * k / self.n_fft) ** 2 * np.where((k == 0) | (k == self.n_fft // 2), 1.0, 2.0)
            self._diff_parseval = torch.from_numpy((np.repeat(parseval, 2) / self.n_fft).astype(np.float32))
        # r such that 10*log10(1 + 2 sqrt(r)) == guard_db
        self._r_max = ((10 ** (self.guard_db / 10) - 1) / 2) ** 2

    # Frames whose predicted float32 error exceeds this many dB are redone in float64.
    guard_db = 2e-5
    # Every probe_stride-th frame is tried on the float32 routes first (plain, then
    # differenced); the window takes the first route on which at most probe_share of them
    # would need float64, else goes straight to float64 (tonal windows).
    probe_stride = 32
    probe_share = 0.5
    # Force one route for every window: "float32", "diff" or "float64" (tests); None: probe.
    route: str | None = None
    # torch threads while the frontend runs (restored after; None: leave torch's setting).
    # Its ops are small (256-frame chunks): with 2 threads on a shared 2-core machine every
    # op waits for the busier core, far slower than 1 thread and slower than the reference
    # (docs/benchmarks.md). Parallelism belongs across windows (one worker process each).
    threads: int | None = 1
    # Windows computed at once on Python threads (None: one per CPU). Build workers, which
    # are processes of their own next to the model, set 1.
    parallel: int | None = None
    # Frames per step (256: 2 MB of float64 frames; faster than 128, docs/benchmarks.md):
    # each step is ~10 small ops, whose fixed cost (dispatch, holding the GIL) weighs less
    # on longer ones.
    frame_chunk = 256
    # Mel bands per block of the block-sparse filter matmul (see _block_filters).
    mel_block = 16

    @staticmethod
    def _block_filters(filters: torch.Tensor, group: int) -> list[tuple[int, int, int, int, torch.Tensor]]:
        """The filter bank as dense blocks for the (re^2, im^2) pair layout.

        Each bin feeds at most two adjacent triangles, so a dense (bins x mels) matmul
        multiplies mostly zeros. Groups of `group` bands cover short, barely overlapping
        bin ranges: one small matmul per group does about 1/4 of the work (16 was the
        fastest group; 8 pays more per-call overhead than it saves). The rows are doubled so
        the matmul also adds re^2 and im^2: power and mel in one step.
        Returns (pair_lo, pair_hi, mel_lo, mel_hi, block) with block (pair_hi - pair_lo, mel_hi - mel_lo).
        """
        blocks = []
        n_mels = filters.shape[1]
        for a in range(0, n_mels, group):
            b = min(a + group, n_mels)
            rows = torch.nonzero(filters[:, a:b].any(1)).flatten()
            lo, hi = (int(rows.min()), int(rows.max()) + 1) if rows.numel() else (0, 1)
            block = filters[lo:hi, a:b].repeat_interleave(2, dim=0).contiguous()
            blocks.append((2 * lo, 2 * hi, a, b, block))
        return blocks

    @classmethod
    def from_config(cls, fe_config: Mapping[str, Any]) -> "LogMelFrontend":
        """From a preprocessor_config.json dict; missing keys take ClapFeatureExtractor's defaults."""
        return cls(**params_from_config(fe_config))

    @classmethod
    def from_feature_extractor(cls, fe: Any) -> "LogMelFrontend":
        """From a transformers ClapFeatureExtractor instance (duck-typed)."""
        return cls.from_config({k: getattr(fe, k) for k in _FE_DEFAULTS if hasattr(fe, k)})

    def settings(self) -> dict[str, Any]:
        """What determines the numbers: the frontend fingerprint the catalog records."""
        return frontend_settings(n_mels=self.n_mels, sampling_rate=self.sampling_rate, n_fft=self.n_fft,
                                 hop_length=self.hop_length, f_min=self.f_min, f_max=self.f_max,
                                 truncation=self.truncation)

    def num_frames(self, n_samples: int) -> int:
        return 1 + n_samples // self.hop_length

    def __call__(self, waveforms: torch.Tensor | np.ndarray) -> torch.Tensor:
        x = torch.as_tensor(waveforms)
        if x.ndim != 2:
            raise ValueError(f"waveforms must be (batch, samples), got shape {tuple(x.shape)}")
        if x.shape[1] <= self.n_fft // 2:
            raise ValueError(f"need more than {self.n_fft // 2} samples per waveform, got {x.shape[1]}")
        x = x.to(torch.float32)
        n_frames = self.num_frames(x.shape[1])
        out = torch.empty(x.shape[0], n_frames, self.n_mels, dtype=torch.float32)
        prev_threads = torch.get_num_threads()
        if self.threads and prev_threads != self.threads:
            torch.set_num_threads(self.threads)
        try:
            with torch.inference_mode():
                self._log_mel_batch(x, out)
        finally:
            if torch.get_num_threads() != prev_threads:
                torch.set_num_threads(prev_threads)
        return out

    def _log_mel_batch(self, x: torch.Tensor, out: torch.Tensor) -> None:
        # One window at a time, `frame_chunk` frames at a time, through buffers made once
        # per call: a chunk's frames, spectrum and power stay in cache (faster than whole
        # windows, whose fresh multi-MB tensors also cost page faults), and a window's result
        # cannot depend on its neighbours in the batch.
        bufs = self._bufs(x.shape[1])
        windows = range(x.shape[0])
        parallel = min(self.parallel or os.cpu_count() or 1, x.shape[0])
        if parallel <= 1:
            for i in windows:
                self._log_mel_into(x[i], out[i], bufs)
            return
        # Whole windows on parallel threads, each single-threaded in torch (which releases
        # the GIL): many small ops scale this way, where intra-op threads only add overhead.
        # Each thread takes the next window when done: routes differ ~2x in cost, and fixed
        # shares (every other window) left one thread with all the dear ones of a batch.
        from concurrent.futures import ThreadPoolExecutor

        local = threading.local()

        def run(i):
            own = getattr(local, "bufs", None)
            if own is None:
                own = local.bufs = self._bufs(x.shape[1])
            with torch.inference_mode():
                self._log_mel_into(x[i], out[i], own)

        with ThreadPoolExecutor(parallel) as pool:
            list(pool.map(run, windows))

    def _pad_into(self, x: torch.Tensor, buf: torch.Tensor) -> torch.Tensor:
        """Centred reflect padding (numpy "reflect": the edge sample is not repeated)."""
        half, n = self.n_fft // 2, x.shape[0]
        buf[half : half + n] = x
        buf[:half] = x[1 : half + 1].flip(0)
        buf[half + n :] = x[n - half - 1 : n - 1].flip(0)
        return buf.unfold(0, self.n_fft, self.hop_length)  # (T, n_fft) view, no copy

    def _mel_power(
        self, frames: torch.Tensor, blocks: list, out: torch.Tensor | None = None, pairs: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Windowed frames (k, n_fft) float32 or float64 -> mel power (k, n_mels) float32.

        `pairs`, if given, is a (>= k, n_bins, 2) float32 buffer for the squares (a fresh
        one per chunk costs allocation and page faults).
        """
        # torch's rfft (MKL) beats numpy's and scipy's pocketfft, in both precisions.
        spec = torch.view_as_real(torch.fft.rfft(frames, dim=-1)[:, : self.n_bins])
        pairs = torch.empty(spec.shape, dtype=torch.float32) if pairs is None else pairs[: spec.shape[0]]
        # A float64 spectrum is rounded to float32 as the reference rounds it (to complex64,
        # which it then squares in float64: the same to within an ulp), by a conversion copy
        # and an in-place square (torch runs mixed-dtype ops element by element). Summing
        # positive float32 values loses nothing near the floor (no cancellation).
        if spec.dtype == torch.float32:
            torch.mul(spec, spec, out=pairs)
        else:
            pairs.copy_(spec)
            pairs.square_()
        return self._mel_of_pairs(pairs.flatten(-2), blocks, out)

    def _mel_of_pairs(self, pairs: torch.Tensor, blocks: list, out: torch.Tensor | None = None) -> torch.Tensor:
        """(k, >= 2 n_bins) re^2, im^2 pairs -> mel power (k, n_mels) float32."""
        if out is None:
            out = torch.empty(pairs.shape[0], self.n_mels, dtype=torch.float32)
        for lo, hi, a, b, block in blocks:
            torch.mm(pairs[:, lo:hi], block, out=out[:, a:b])
        return out

    def _needs_float64(self, energy: torch.Tensor, mel: torch.Tensor, mass: torch.Tensor) -> torch.Tensor:
        """Boolean per frame: is the float32 result of this frame possibly > guard_db off?

        A float32 FFT adds white noise of about u^2 * sum(frame^2) per bin (u the unit
        roundoff). A band m of power P_m and filter mass W_m then has relative error
        about 2 sqrt(r) with r = u^2 * energy * W_m / P_m. Loud pure tones, sweeps, DC
        and steep (brown) spectra put bands ~140 dB under the frame energy, where this
        is dB off; noise-like audio rarely needs it. On the differenced route the frame
        is the difference and W_m the mass of the divided filters: the noise of each
        bin is divided by the same gain as its power.
        """
        worst = (mass / mel.clamp(min=MEL_FLOOR)).amax(-1)  # (k,)
        return worst.mul_(energy).mul_(_EPS32_SQ) > self._r_max

    @staticmethod
    def _energy(frames: torch.Tensor) -> torch.Tensor:
        return torch.linalg.vector_norm(frames, dim=-1).square_()

    def _diff_frames(self, frames: torch.Tensor, dframes: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """Windowed frames (k, n_fft), circularly differenced, in float32: d = v - roll(v, 1), v = w x.

        The DFT of d is V_k (1 - e^(-2 pi i k / n)): exact, undone in power by the divided
        filters. Audio whose energy sits at low frequencies (rumble, brown noise) is
        whitened by it: its float32 rounding noise, which follows the frame energy, drops
        by orders of magnitude while the high bands keep their level.

        v itself is never formed in float32 (its rounding would add back white noise at the
        level of the whole frame): d[t] = w[t] (x[t] - x[t-1]) + (w[t] - w[t-1]) x[t-1],
        where both terms are small where d is, with the sample differences `dframes` taken
        once over the padded signal. d[0] = -w[n-1] x[n-1] (w[0] = 0).
        """
        torch.mul(dframes, self._window32, out=out)
        out[:, 1:].addcmul_(frames[:, :-1], self._dwindow32[1:])
        torch.mul(frames[:, -1], -self._window32[-1], out=out[:, 0])
        return out

    def _routes(self, probe: torch.Tensor) -> str:
        """The route for a window, from a strided view of every probe_stride-th frame."""
        if self.route is not None:
            if self.route == "diff" and self._diff_blocks is None:
                return "float64"
            return self.route
        w32 = torch.mul(probe, self._window32)
        pairs = torch.view_as_real(torch.fft.rfft(w32, dim=-1)).square().flatten(-2)  # all bins
        mel = self._mel_of_pairs(pairs, self._mel_blocks)
        if self._needs_float64(self._energy(w32), mel, self._filter_mass).sum().item() <= self.probe_share * len(w32):
            return "float32"
        if self._diff_blocks is not None:
            # The differenced route judged without computing it: the energy of the differenced
            # frames by Parseval from this spectrum, the band powers as measured here. Where
            # float32 noise swamps a band here, the measured power is that noise, ~u^2 energy
            # W_m, and the verdict "needs float64" unless differencing removes ~all the energy.
            energy = pairs @ self._diff_parseval
            if self._needs_float64(energy, mel, self._diff_mass).sum().item() <= self.probe_share * len(w32):
                return "diff"
        return "float64"

    def _window64(self, frames: torch.Tensor, buf: torch.Tensor) -> torch.Tensor:
        """float32 frames (k, n_fft) times the float64 window, in float64 (exact promotion).

        Converted by a copy, then multiplied in place: faster than one mixed-dtype multiply,
        which torch does element by element.
        """
        w64 = buf[: frames.shape[0]]
        w64.copy_(frames)
        return w64.mul_(self._window)

    def _bufs(self, n_samples: int) -> dict[str, torch.Tensor]:
        n_frames = self.num_frames(n_samples)
        return {
            "pad32": torch.empty(n_samples + self.n_fft, dtype=torch.float32),
            "dpad32": torch.zeros(n_samples + self.n_fft, dtype=torch.float32),
            "frames32": torch.empty(self.frame_chunk, self.n_fft, dtype=torch.float32),
            "frames64": torch.empty(self.frame_chunk, self.n_fft, dtype=torch.float64),
            "pairs": torch.empty(self.frame_chunk, self.n_bins, 2, dtype=torch.float32),
            "energy": torch.empty(n_frames, dtype=torch.float32),
        }

    def _log_mel_into(self, x: torch.Tensor, out: torch.Tensor, bufs: dict[str, torch.Tensor]) -> None:
        """One window x (L,) -> out (T, n_mels) in dB."""
        frames32 = self._pad_into(x, bufs["pad32"])  # (T, n_fft) view over the padded signal
        # Probe: which route is precise enough for most frames? The float32 ones are cheaper,
        # but a route on which most frames would be redone in float64 is wasted work.
        route = self._routes(frames32[:: self.probe_stride])
        n = frames32.shape[0]
        if route == "float64":
            for i in range(0, n, self.frame_chunk):
                j = min(i + self.frame_chunk, n)
                w64 = self._window64(frames32[i:j], bufs["frames64"])
                self._mel_power(w64, self._mel_blocks, out=out[i:j], pairs=bufs["pairs"])
            out.clamp_(min=MEL_FLOOR).log10_().mul_(10.0)
            return
        if route == "diff":
            pad, dpad = bufs["pad32"], bufs["dpad32"]
            torch.sub(pad[1:], pad[:-1], out=dpad[1:])  # x[t] - x[t-1]: exact for neighbours within 2x
            dframes32 = dpad.unfold(0, self.n_fft, self.hop_length)
            blocks, mass = self._diff_blocks, self._diff_mass
        else:
            blocks, mass = self._mel_blocks, self._filter_mass
        energy = bufs["energy"][:n]
        for i in range(0, n, self.frame_chunk):
            j = min(i + self.frame_chunk, n)
            if route == "diff":
                w32 = self._diff_frames(frames32[i:j], dframes32[i:j], bufs["frames32"][: j - i])
            else:  # windowing fused with the framing copy, into a buffer that stays in cache
                w32 = torch.mul(frames32[i:j], self._window32, out=bufs["frames32"][: j - i])
            self._mel_power(w32, blocks, out=out[i:j], pairs=bufs["pairs"])
            torch.linalg.vector_norm(w32, dim=-1, out=energy[i:j])
        # The frames whose float32 result may be off (judged for the whole window at once:
        # a few ops instead of a few per chunk), redone in float64 all at once.
        redo = self._needs_float64(energy.square_(), out, mass).nonzero().flatten()
        for i in range(0, redo.numel(), self.frame_chunk):
            rows = redo[i : i + self.frame_chunk]
            w64 = self._window64(frames32[rows], bufs["frames64"])
            out[rows] = self._mel_power(w64, self._mel_blocks, pairs=bufs["pairs"])
        out.clamp_(min=MEL_FLOOR).log10_().mul_(10.0)

"""What the IVF kinds share: training the coarse quantizer, probing lists, tuning nprobe.

Not a kind itself: ivf_flat, ivf_sq8, ivf_pq and ivf_pqfs subclass it with their codes.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ..runtime import faiss_lib
from .base import Kind

if TYPE_CHECKING:
    import numpy as np

TRAIN_PER_LIST = 40     # training vectors per inverted list
KMEANS_ITERATIONS = 10  # enough for the coarse centroids and the product codes alike
# nprobe steps of ~1.5x: a power-of-two grid leaves the setting that just reaches the
# target up to 2x dearer than needed.
NPROBE_GRID = sorted({round(b * 2 ** e) for e in range(16) for b in (1, 1.5)})
FILTER_MARGIN = 2       # a filtered search probes enough lists for this many times k hits
WIDEN = 4               # a filtered search that still falls short probes this many times more


class Ivf(Kind):
    rerank_factors: tuple[int, ...] = (1,)  # re-ranking depths (x k) the tuner tries, shallow first
    min_train = 0                            # training vectors at least (product codes need more)
    pq_codes = False

    def train(self, faiss, index, vecs, plan: dict, n: int, rng: np.random.Generator) -> None:
        import numpy as np

        ntrain = min(n, max(TRAIN_PER_LIST * plan["nlist"], self.min_train))
        sample = np.sort(rng.choice(n, ntrain, replace=False))
        train = np.ascontiguousarray(vecs[sample], dtype=np.float32)
        ivf = faiss.downcast_index(faiss.extract_index_ivf(index))
        ivf.cp.niter = KMEANS_ITERATIONS
        if self.pq_codes:  # many small k-means (16 or 256 centroids): cheap
            ivf.pq.cp.niter, ivf.pq.cp.max_points_per_centroid = KMEANS_ITERATIONS, 4096
        index.train(train)
        del train

    def after_add(self, vi) -> None:
        """Swap an HNSW coarse quantizer for a flat one over the same centroids, once the bulk
        add is done. The graph makes assigning millions of vectors fast, but faiss's fast-scan
        IVF searches residual codes wrongly through it (recall collapses; docs/benchmarks.md,
        "coarse quantizer"). A flat scan of the centroids costs a query about a millisecond."""
        faiss = faiss_lib()
        if "HNSW" not in vi.meta["factory"] or "IVF" not in vi.meta["factory"]:
            return
        ivf = faiss.extract_index_ivf(vi.index)
        if not ivf.by_residual:
            return
        graph = faiss.downcast_index(ivf.quantizer)
        flat = faiss.IndexFlatIP(vi.dim)
        flat.add(graph.storage.reconstruct_n(0, ivf.nlist))
        ivf.quantizer = flat
        ivf.own_fields = True
        flat.this.disown()  # the IVF index owns (and frees) it now
        vi.meta["quantizer"] = "flat"

    def prepare_search(self, ivf, kk: int) -> None:
        """Per-search settings of the downcast IVF index (see ivf_pqfs)."""

    def search(self, vi, q, k, kk, sel, allowed):
        faiss = faiss_lib()
        ivf = faiss.downcast_index(faiss.extract_index_ivf(vi.index))
        nlist = ivf.nlist
        self.prepare_search(ivf, kk)
        nprobe = vi.meta["params"].get("nprobe", 1)
        if allowed is not None:  # expected hits per query ~ |allowed| * nprobe / nlist
            nprobe = max(nprobe, math.ceil(FILTER_MARGIN * nlist * kk / max(len(allowed), 1)))
        while True:
            sp = faiss.SearchParametersIVF(sel=sel, nprobe=min(nprobe, nlist))
            D, I = vi.index.search(q, kk, params=sp)
            if allowed is None or (I[:, -1] >= 0).all() or nprobe >= nlist:
                break
            nprobe *= WIDEN
        return D, I, False

    def choose(self, tuner) -> list[dict]:
        """The smallest re-ranking depth that reaches the target with every list probed, then
        the smallest nprobe for it and for each deeper one (deeper re-ranking allows fewer
        probes) while that keeps getting faster."""
        from ..arrays import ArrayRerank

        vi = tuner.vi
        nlist = faiss_lib().extract_index_ivf(vi.index).nlist
        probes = [p for p in NPROBE_GRID if p < nlist] + [nlist]
        reached: list[dict] = []
        saved_rerank = vi.rerank
        if vi.rerank is None and self.compressed:
            vi.rerank = ArrayRerank(tuner.ids, tuner.vecs)  # tune as the caller will search: re-ranked
            vi.rerank.warm()  # and time it without page faults, as a server searches
        try:
            for f in self.rerank_factors:
                options = [dict(nprobe=p, k_factor=f) for p in probes]
                if reached:  # a deeper re-ranking reaches wherever a shallower one did
                    options = [o for o in options if o["nprobe"] <= reached[-1]["nprobe"]]
                found = tuner.smallest(options)
                if found is None:
                    continue
                reached.append(found)
                if len(reached) > 1 and tuner.measure(found)[1] >= tuner.measure(reached[-2])[1]:
                    break  # deeper re-ranking no longer pays for the probes it saves
        finally:
            vi.rerank = saved_rerank
        return reached

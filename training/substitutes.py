"""Substitutes: "your size is sold out — here are similar items".

A candidate substitute of an anchor product
  * is in the anchor's category (or a category `category_map` allows for it),
  * costs about the same (price band around the anchor's price),
  * is similar by behaviour (cosine of ALS item factors: bought by the same people)
    and/or by content (cosine of TF-IDF title/brand/attribute vectors, training.content),
  * is not one of the anchor's strong co-purchase complements: people buy complements
    together and substitutes instead of each other. A co-purchased candidate that is a
    near-duplicate by content (two colours of one cup bought in one order) is a variant,
    not a complement, and stays.

Score = price_factor * (w_b * confidence * cos_behaviour + w_c * cos_content
                        + w_p * popularity), see `SubstitutesConfig`.
Behaviour similarity is shrunk by how much history the two products have
(n / (n + behaviour_shrinkage) orders each), so a product with no history relies on
content, category and popularity alone, and a noisy factor of a twice-bought product
does not outvote its title.

Work is done per category in blocks of at most `block_size` (anchor, candidate)
pairs, so memory is bounded by the block, never P x P. Time is bounded too: in a
category larger than `max_candidates`, each anchor is scored against about that many
candidates, its neighbours in five orderings of the category that put look-alikes
next to each other (four by content tokens, one by behaviour), so the cost grows with
products x max_candidates, not with the square of the category size.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import scipy.sparse as sp

from training.als import ALSModel
from training.content import FAMILY_COLUMN, ContentConfig, ContentVectors, content_vectors
from training.copurchase import order_matrix
from training.data import Interactions


MAX_CANDIDATES = 4096


@dataclass
class SubstitutesConfig:
    """Parameters of the substitute model.

    top_k: substitutes stored per product (-1 padded when fewer qualify).
    price_band: relative price band; a candidate within a factor (1 + price_band) of
        the anchor's price either way is "about the same price". None: ignore prices.
    price_mode: "soft" (default) multiplies the score of a candidate outside the band
        by (band edge / its price ratio) ** price_elasticity: with the default 1 and a
        ±30 % band, an item at 2.6x the anchor's price keeps half its score. Similar
        items just outside the band still qualify, in-band ones of equal similarity
        win. "hard" drops candidates outside the band. Unknown prices never penalise.
        Soft because shoppers do switch across price points: on complete-journey
        (unit prices from the order lines) households' later same-type replacements
        lose 0.09 of HitRate@10 under a hard ±30 % band against none, 0.04 under the
        soft one; online-retail's variant families, whose median prices often differ,
        lose 0.055 under hard and nothing under soft.
    category_map: category -> extra categories its products may be substituted from
        (e.g. {"shoes - running": ["shoes - trail"]}); the own category always counts.
    behaviour_weight, content_weight, popularity_weight: weights of the ALS cosine,
        the content cosine and the candidate's popularity within its category
        (log-orders scaled to [0, 1]). Behaviour and content get an equal say; the
        popularity prior is a tenth, enough to prefer items that actually sell and to
        break ties among look-alikes (grocery catalogs repeat "Soft Drinks 12 Oz"),
        not to outvote similarity.
    behaviour_shrinkage: orders at which a product's behaviour similarity counts half
        (each product of a pair counts n / (n + shrinkage); the pair their geometric mean).
    complement_min_support: a listed complement bought together with the anchor in at
        least this many orders is excluded from its substitutes (0: keep them all)...
    variant_similarity: ...unless its content cosine to the anchor is at least this
        fraction of the anchor's best content cosine (a variant: shops selling several
        colours of one item see them bought together; on online-retail over a third of the
        variant-family pairs are listed complements).
    title_words, title_chars, brand, attributes: content field weights (training.content).
    content_exclude_columns: attribute columns kept out of the content vectors. By
        default the variant `family` column: it is the ground truth of the substitute
        evaluation, and a model that reads the answer scores ~1.0 whatever it is worth
        (a shop whose variants share a product_id needs no such column).
    block_size: (anchor, candidate) pairs scored at once; bounds memory (~6 arrays of
        this many floats).
    max_candidates: in a category (with its `category_map` extras) of more products
        than this, an anchor is scored against about this many candidates instead of
        the whole category: its neighbours in each of five sort orders that put
        look-alikes next to each other (`_look_alike_keys`); smaller categories compare
        every pair. The cost of a category of n products is then ~n x max_candidates
        pairs instead of n^2. A window pair costs ~5x an all-pairs pair (sparse
        bookkeeping; 340 vs 62 ns on the 10M-line synthetic shop at 384), so windows pay
        off in categories several times larger than the bound: 4096 leaves every
        category of the shared datasets and of the 10M-line synthetic benchmark
        (<= 3.7k products) exact, and caps a 50k-product category at ~1/12 of its pairs. Smaller bounds cost quality:
        online-retail's variant families (one 3.7k category) HitRate@10 0.959 exact,
        0.948 at 384; complete-journey's replacements 0.542 exact, 0.533 at 384.
        None: every pair everywhere (time quadratic in the category size).
    """

    top_k: int = 50
    price_band: float | None = 0.3
    price_mode: str = "soft"
    price_elasticity: float = 1.0
    category_map: dict[str, list[str]] | None = None
    behaviour_weight: float = 0.5
    content_weight: float = 0.5
    popularity_weight: float = 0.1
    behaviour_shrinkage: float = 10.0
    complement_min_support: int = 2
    variant_similarity: float = 0.5
    title_words: float = 1.0
    title_chars: float = 1.0
    brand: float = 0.5
    attributes: float = 1.0
    content_exclude_columns: list[str] = field(default_factory=lambda: [FAMILY_COLUMN])
    block_size: int = 2_000_000
    max_candidates: int | None = MAX_CANDIDATES

    def __post_init__(self) -> None:
        if self.max_candidates is not None and self.max_candidates < 6:
            raise ValueError(f"[substitutes] max_candidates must be >= 6 (or none), got {self.max_candidates}")

    def content_config(self) -> ContentConfig:
        return ContentConfig(title_words=self.title_words, title_chars=self.title_chars, brand=self.brand,
                             attributes=self.attributes, exclude_columns=tuple(self.content_exclude_columns))


@dataclass
class _Signals:
    """Per-product inputs of the score, aligned with the product index."""

    factors: np.ndarray  # (P, F) unit-norm ALS factors (zero rows: no behaviour)
    n_orders: np.ndarray  # (P,) orders containing the product
    content: ContentVectors  # unit-norm rows per distinct content
    log_price: np.ndarray  # (P,) NaN when unknown
    popularity: np.ndarray  # (P,) log1p(orders) / max over the category, in [0, 1]
    complement_support: sp.csr_matrix  # (P, P) orders with both, for listed complements


def orders_per_product(inter: Interactions) -> np.ndarray:
    """(P,) number of distinct orders containing each product."""
    return np.diff(order_matrix(inter).tocsc().indptr)


def _signals(inter: Interactions, products: pd.DataFrame, als: ALSModel, complements_idx: np.ndarray,
             complements_support: np.ndarray, content_cfg: ContentConfig) -> _Signals:
    n_products = inter.n_products
    if len(products) != n_products or als.item_factors.shape[0] != n_products:
        raise ValueError("products, ALS factors and interactions must share one product index "
                         f"({len(products)}, {als.item_factors.shape[0]}, {n_products})")
    f = als.item_factors.astype(np.float32)
    norms = np.linalg.norm(f, axis=1, keepdims=True)
    unit = np.where(norms > 0, f / np.where(norms > 0, norms, 1), 0).astype(np.float32)

    n_orders = orders_per_product(inter).astype(np.float32)
    log_n = np.log1p(n_orders)
    cat_max = np.zeros(len(inter.category_names), np.float32)
    np.maximum.at(cat_max, inter.product_category, log_n)
    popularity = log_n / np.maximum(cat_max[inter.product_category], 1e-9)

    price = pd.to_numeric(products["price"], errors="coerce").to_numpy(dtype=np.float64)
    log_price = np.where(price > 0, np.log(np.where(price > 0, price, 1.0)), np.nan)

    listed = complements_idx >= 0
    rows = np.broadcast_to(np.arange(n_products)[:, None], complements_idx.shape)[listed]
    support = sp.csr_matrix((complements_support[listed].astype(np.int32), (rows, complements_idx[listed])),
                            shape=(n_products, n_products))
    return _Signals(unit, n_orders, content_vectors(products, content_cfg), log_price.astype(np.float32),
                    popularity.astype(np.float32), support)


@dataclass
class _Windows:
    """Windows of look-alikes in the categories larger than max_candidates: row i scores
    anchors[i] (-1 padded) against cands[i] (ascending codes) in sort order `cut[i]`."""

    anchors: np.ndarray  # (N, chunk) int64
    cands: np.ndarray  # (N, window) int64
    cut: np.ndarray  # (N,) int64
    n_cuts: int


def _candidate_groups(inter: Interactions, s: _Signals,
                      cfg: SubstitutesConfig) -> tuple[list[tuple[np.ndarray, np.ndarray]], _Windows | None]:
    """(anchors, candidates) of each category (with its candidate categories) small
    enough to compare every pair, and the windows of the larger ones."""
    names = list(inter.category_names)
    code_of = {n: i for i, n in enumerate(names)}
    members = np.argsort(inter.product_category, kind="stable")
    bounds = np.searchsorted(inter.product_category[members], np.arange(len(names) + 1))
    by_cat = [members[bounds[c]:bounds[c + 1]] for c in range(len(names))]
    own = np.zeros(inter.n_products, bool)
    keys: list[tuple[np.ndarray, ...]] = []
    whole, windows = [], []
    for c, anchors in enumerate(by_cat):
        if len(anchors) == 0:
            continue
        extra = [code_of[e] for e in (cfg.category_map or {}).get(names[c], []) if e in code_of and code_of[e] != c]
        cands = np.sort(np.concatenate([anchors, *(by_cat[e] for e in extra)])) if extra else anchors
        if cfg.max_candidates is None or len(cands) <= cfg.max_candidates:
            whole.append((anchors, cands))
            continue
        keys = keys or _look_alike_keys(s)
        own[anchors] = True
        for cut, key in enumerate(keys):
            ordered = cands[np.lexsort([k[cands] for k in reversed(key)])]  # ties: by code (cands ascend)
            a, w = sorted_windows(ordered, own[ordered], max(2, cfg.max_candidates // len(keys)))
            windows.append((a, w, np.full(len(a), cut)))
        own[anchors] = False
    if not windows:
        return whole, None
    a, w, cut = (np.concatenate(x) for x in zip(*windows))
    return whole, _Windows(a, w, cut, len(keys))


def _look_alike_keys(s: _Signals, seed: int = 0) -> list[tuple[np.ndarray, ...]]:
    """Sort keys (per product, most significant first) that put look-alikes next to
    each other, one tuple per cut of a large category: four by content, each two
    weighted MinHash tokens (the winner of an exponential race over the product's
    tokens, weighted by TF-IDF: two products draw the same token about as often as
    their weighted token sets overlap), and one by behaviour (SimHash: the signs of
    the ALS factors on 16 random directions, on which products bought by the same
    people agree), content within it. More cuts with smaller windows find more
    look-alikes for the same work (online-retail variant families, 384 candidates:
    3 cuts HitRate@10 0.89, 4 cuts 0.92, 5 cuts 0.95, 7 cuts 0.95; unweighted
    MinHash with 3 cuts 0.85; tried and dropped: the nearest 500 by price 0.87,
    random-hyperplane trees 0.68)."""
    rng = np.random.default_rng(seed)
    rows = s.content.rows
    empty = np.diff(rows.indptr) == 0
    row_of = np.repeat(np.arange(rows.shape[0]), np.diff(rows.indptr))

    def minhash() -> np.ndarray:
        if rows.nnz == 0:
            return np.zeros(len(s.content.group), np.int64)
        race = rng.exponential(size=rows.shape[1]).astype(np.float32)[rows.indices] / np.maximum(rows.data, 1e-12)
        best = np.minimum.reduceat(race, np.minimum(rows.indptr[:-1], rows.nnz - 1))
        win = np.full(rows.shape[0], np.iinfo(np.int64).max)
        at = np.flatnonzero(race == best[row_of])[::-1]  # reversed: a row's first winner is written last
        win[row_of[at]] = rows.indices[at]
        return np.where(empty, np.iinfo(np.int64).max, win)[s.content.group]

    c = [minhash() for _ in range(8)]
    bits = (s.factors @ rng.standard_normal((s.factors.shape[1], 16)).astype(np.float32)) > 0
    simhash = bits.astype(np.int64) @ (1 << np.arange(16, dtype=np.int64))
    return [(c[0], c[1]), (c[2], c[3]), (c[4], c[5]), (c[6], c[7]), (simhash, c[0])]


def sorted_windows(ordered: np.ndarray, is_anchor: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """`ordered` (look-alikes adjacent) in chunks of window / 2 anchors, each with the
    `window` products centred on it, so an anchor sees at least window / 4 neighbours
    on either side in the order. (anchors (N, chunk) -1 padded, cands (N, window)),
    rows ascending; needs len(ordered) >= window."""
    n, chunk = len(ordered), max(1, window // 2)
    n_chunks = -(-n // chunk)
    anchors = np.full(n_chunks * chunk, -1, np.int64)
    anchors[:n] = np.where(is_anchor, ordered, -1)
    start = np.clip(np.arange(n_chunks) * chunk + chunk // 2 - window // 2, 0, n - window)
    cands = ordered[start[:, None] + np.arange(window)]
    return np.sort(anchors.reshape(n_chunks, chunk), axis=1), np.sort(cands, axis=1)


def _window_content(s: _Signals, anchors: np.ndarray, cands: np.ndarray) -> np.ndarray:
    """(N, chunk, window) content cosines of each window's anchors and candidates, from
    one sparse product over (window, token) pairs, so it holds only within-window pairs
    (exact: each pair sums its shared tokens as the whole-category product does)."""
    n, a = anchors.shape
    w = cands.shape[1]
    rows, vocab = s.content.rows, np.int64(s.content.rows.shape[1])

    def entries(codes: np.ndarray, per_window: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        m = rows[s.content.group[codes.ravel()]]
        row = np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(m.indptr))
        return row, row // per_window * vocab + m.indices, m.data

    out = np.zeros((n, a, w), np.float32)
    b_row, b_key, b_val = entries(cands, w)
    keys, b_col = np.unique(b_key, return_inverse=True)  # the (window, token) pairs candidates have
    if len(keys) == 0:
        return out
    a_row, a_key, a_val = entries(np.maximum(anchors, 0), a)
    at = np.minimum(np.searchsorted(keys, a_key), len(keys) - 1)
    hit = keys[at] == a_key  # anchor tokens no candidate of the window has add nothing
    left = sp.csr_matrix((a_val[hit], (a_row[hit], at[hit])), shape=(n * a, len(keys)))
    right = sp.csr_matrix((b_val, (b_col, b_row)), shape=(len(keys), n * w))
    prod = (left @ right).tocoo()
    out[prod.row // a, prod.row % a, prod.col % w] = prod.data
    return out


def _complement_keys(s: _Signals, min_support: int) -> np.ndarray:
    """Sorted anchor * P + complement of the listed complements with >= min_support."""
    m = s.complement_support
    rows = np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(m.indptr))
    keep = m.data >= min_support
    return np.sort(rows[keep] * m.shape[0] + m.indices[keep])


def _score_windows(anchors: np.ndarray, cands: np.ndarray, content_sim: np.ndarray, s: _Signals,
                   cfg: SubstitutesConfig, comp_keys: np.ndarray) -> np.ndarray:
    """`_score_block` for windows: (N, chunk, window) scores of anchors (N, chunk; -1
    pads, whose rows are garbage) against cands (N, window)."""
    a = np.maximum(anchors, 0)
    is_self = a[:, :, None] == cands[:, None, :]
    content_sim[is_self] = 0
    score = _blend(a, cands, content_sim, s, cfg)
    if cfg.complement_min_support > 0 and len(comp_keys):
        keys = a[:, :, None] * s.complement_support.shape[0] + cands[:, None, :]
        comp = comp_keys[np.minimum(np.searchsorted(comp_keys, keys), len(comp_keys) - 1)] == keys
        _drop_complements(score, comp, content_sim, cfg)
    score[is_self] = -np.inf
    return score


def _merge_cuts(idx: np.ndarray, score: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, T, K) per-cut lists -> (n, k) best distinct products, best first, ties by code.

    Sorts packed int64 keys (a non-negative float32's bits order like the number):
    by code then score to keep each product's best entry, then by score then code."""
    n = idx.shape[0]
    idx, score = idx.reshape(n, -1).astype(np.int64), score.reshape(n, -1)
    valid = (idx >= 0) & (score > 0)  # kept scores are positive (see _score_block)
    worse = np.int64(0xFFFFFFFF) - np.where(valid, score, 0).astype(np.float32).view(np.uint32).astype(np.int64)
    code = np.where(valid, idx, np.int64(2**31 - 1))
    by_code = np.sort((code << 32) | worse, axis=1)
    code, worse = by_code >> 32, by_code & 0xFFFFFFFF
    first = np.ones(code.shape, bool)
    first[:, 1:] = code[:, 1:] != code[:, :-1]
    keep = first & (code < 2**31 - 1)
    by_score = np.sort(np.where(keep, (worse << 32) | code, np.iinfo(np.int64).max), axis=1)[:, :k]
    ok = by_score != np.iinfo(np.int64).max
    out_idx = np.where(ok, by_score & 0xFFFFFFFF, -1).astype(np.int32)
    bits = (np.int64(0xFFFFFFFF) - (by_score >> 32)).astype(np.uint32)
    out_score = np.where(ok, bits.view(np.float32), 0).astype(np.float32)
    if out_idx.shape[1] < k:
        pad = k - out_idx.shape[1]
        out_idx = np.pad(out_idx, ((0, 0), (0, pad)), constant_values=-1)
        out_score = np.pad(out_score, ((0, 0), (0, pad)))
    return out_idx, out_score


def _price_factor(anchor_lp: np.ndarray, cand_lp: np.ndarray, cfg: SubstitutesConfig) -> np.ndarray | None:
    """(..., anchors, cands) multiplier of the score: 1 inside the band (or price unknown);
    leading axes (windows of a large category) broadcast."""
    if cfg.price_band is None:
        return None
    if cfg.price_mode not in ("soft", "hard"):
        raise ValueError(f"price_mode must be 'soft' or 'hard', got {cfg.price_mode!r}")
    excess = np.abs(anchor_lp[..., :, None] - cand_lp[..., None, :])  # |log price ratio|
    excess -= np.float32(np.log1p(cfg.price_band))
    np.maximum(excess, 0, out=excess)
    excess[np.isnan(excess)] = 0  # unknown price: no penalty
    if cfg.price_mode == "hard":
        return (excess == 0).astype(np.float32)
    excess *= np.float32(-cfg.price_elasticity)
    return np.exp(excess, out=excess)


def _sqrt_confidence(n_orders: np.ndarray, cfg: SubstitutesConfig) -> np.ndarray:
    """sqrt(n / (n + shrinkage)): the geometric mean over a pair is the pair's weight."""
    if cfg.behaviour_shrinkage <= 0:
        return (n_orders > 0).astype(np.float32)
    return np.sqrt(n_orders / (n_orders + np.float32(cfg.behaviour_shrinkage)))


def _score_block(anchors: np.ndarray, cands: np.ndarray, content_sim: np.ndarray, s: _Signals,
                 cfg: SubstitutesConfig) -> np.ndarray:
    """(len(anchors), len(cands)) scores from the content cosines `content_sim` (its
    anchor-to-itself entries are zeroed in place) and the other signals; -inf marks
    candidates that may not be used."""
    is_self = anchors[:, None] == cands[None, :]
    content_sim[is_self] = 0
    score = _blend(anchors, cands, content_sim, s, cfg)
    if cfg.complement_min_support > 0:
        comp = s.complement_support[anchors][:, cands].toarray() >= cfg.complement_min_support
        _drop_complements(score, comp, content_sim, cfg)
    score[is_self] = -np.inf
    return score


def _blend(anchors: np.ndarray, cands: np.ndarray, content_sim: np.ndarray, s: _Signals,
           cfg: SubstitutesConfig) -> np.ndarray:
    """The weighted signals times the price factor, (..., A, C) for anchors (..., A) and
    candidates (..., C): one (A, C) block, or a stack of windows."""
    score = np.float32(cfg.content_weight) * content_sim
    if cfg.behaviour_weight > 0:
        behaviour = s.factors[anchors] @ np.swapaxes(s.factors[cands], -1, -2)
        behaviour *= _sqrt_confidence(s.n_orders[anchors], cfg)[..., :, None] * np.float32(cfg.behaviour_weight)
        behaviour *= _sqrt_confidence(s.n_orders[cands], cfg)[..., None, :]
        score += behaviour
    if cfg.popularity_weight > 0:
        score += np.float32(cfg.popularity_weight) * s.popularity[cands][..., None, :]
    factor = _price_factor(s.log_price[anchors], s.log_price[cands], cfg)
    if factor is not None:
        score *= factor
    score[score <= 0] = -np.inf  # no evidence at all (or outside a hard band) is no substitute
    return score


def _drop_complements(score: np.ndarray, comp: np.ndarray, content_sim: np.ndarray, cfg: SubstitutesConfig) -> None:
    """Strong complements (`comp`) go, unless content says they are variants of the
    anchor: at least `variant_similarity` times as similar as its closest look-alike.
    Relative, so it means the same in a terse catalog as in a wordy one."""
    closest = content_sim.max(axis=-1, keepdims=True)
    comp &= (content_sim < np.float32(cfg.variant_similarity) * closest) | (content_sim <= 0)
    score[comp] = -np.inf


def top_k_rows(score: np.ndarray, cands: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Best k per row of `score` (columns are the ascending product codes `cands`, shared
    (C,) or per row (R, C)) as (product codes, scores), best first, equal scores in
    product-code order; -inf entries become -1 / 0 padding."""
    n = score.shape[1]
    if n > k:
        part = np.argpartition(score, n - k, axis=1)[:, n - k:]  # no negated copy of the block
        vals = np.take_along_axis(score, part, axis=1)
        # Rows whose k-th score ties with an unselected one: pick by product code.
        kth = vals.min(axis=1, keepdims=True)
        tied = np.flatnonzero(np.isfinite(kth[:, 0]) & (np.count_nonzero(score >= kth, axis=1) > k))
        if len(tied):
            # cands ascend, so the lowest codes among the ties are the leftmost ones.
            sub, t = score[tied], kth[tied]
            eq = sub == t
            room = k - np.count_nonzero(sub > t, axis=1)
            keep = (sub > t) | (eq & (np.cumsum(eq, axis=1) <= room[:, None]))
            part[tied] = np.nonzero(keep)[1].reshape(len(tied), k)
            vals[tied] = np.take_along_axis(sub, part[tied], axis=1)
    else:
        part = np.broadcast_to(np.arange(n), score.shape).copy()
        vals = np.take_along_axis(score, part, axis=1)
    order = np.lexsort((_take(cands, part), -vals), axis=1)
    part, vals = np.take_along_axis(part, order, axis=1), np.take_along_axis(vals, order, axis=1)
    finite = np.isfinite(vals)
    idx = np.where(finite, _take(cands, part), -1).astype(np.int32)
    vals = np.where(finite, vals, 0).astype(np.float32)
    if idx.shape[1] < k:
        pad = k - idx.shape[1]
        idx = np.pad(idx, ((0, 0), (0, pad)), constant_values=-1)
        vals = np.pad(vals, ((0, 0), (0, pad)))
    return idx, vals


def _take(cands: np.ndarray, part: np.ndarray) -> np.ndarray:
    return cands[part] if cands.ndim == 1 else np.take_along_axis(cands, part, axis=1)


def fit_substitutes(
    inter: Interactions,
    products: pd.DataFrame,
    als: ALSModel,
    complements_idx: np.ndarray,
    complements_support: np.ndarray,
    cfg: SubstitutesConfig | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(idx (P, top_k) int32 best first, -1 padded; score (P, top_k) float32).

    `products` is `training.data.product_table(catalog, inter.product_ids)`;
    `complements_*` are the co-purchase model's (P, K) neighbour codes and supports.
    """
    cfg = cfg or SubstitutesConfig()
    return fit_substitute_variants(inter, products, als, complements_idx, complements_support, {"": cfg})[""]


def fit_substitute_variants(
    inter: Interactions,
    products: pd.DataFrame,
    als: ALSModel,
    complements_idx: np.ndarray,
    complements_support: np.ndarray,
    cfgs: dict[str, SubstitutesConfig],
    anchors: np.ndarray | None = None,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """`fit_substitutes` for several configs in one pass (content vectors and cosines
    computed once); they must agree on content fields, category_map, block_size and
    candidate blocks.
    `anchors` (product codes) limits the work to those rows; the others stay empty."""
    first = next(iter(cfgs.values()))
    shared = (first.content_config(), first.category_map, first.block_size, first.max_candidates)
    if any((c.content_config(), c.category_map, c.block_size, c.max_candidates) != shared
           for c in cfgs.values()):
        raise ValueError("substitute variants must share content fields, category_map, block_size and "
                         "max_candidates")
    s = _signals(inter, products, als, complements_idx, complements_support, first.content_config())
    out = {name: (np.full((inter.n_products, c.top_k), -1, np.int32), np.zeros((inter.n_products, c.top_k), np.float32))
           for name, c in cfgs.items()}
    wanted = None
    if anchors is not None:
        wanted = np.zeros(inter.n_products, bool)
        wanted[anchors] = True
    whole, windows = _candidate_groups(inter, s, first)
    for group_anchors, cands in whole:
        group_anchors = group_anchors if wanted is None else group_anchors[wanted[group_anchors]]
        if len(group_anchors) == 0:
            continue
        # Content cosines between distinct contents only, then expanded to products.
        cand_groups, cand_inv = np.unique(s.content.group[cands], return_inverse=True)
        cand_rows = s.content.rows[cand_groups].T.tocsr()
        step = max(1, first.block_size // len(cands))
        for lo in range(0, len(group_anchors), step):
            block = group_anchors[lo:lo + step]
            groups, inv = np.unique(s.content.group[block], return_inverse=True)
            sim = (s.content.rows[groups] @ cand_rows).toarray()[np.ix_(inv, cand_inv)]
            for name, cfg in cfgs.items():
                idx, score = out[name]
                idx[block], score[block] = top_k_rows(_score_block(block, cands, sim, s, cfg), cands, cfg.top_k)
    if windows is not None:
        _fit_windows(windows, s, cfgs, out, wanted, first.block_size)
    return out


def _fit_windows(windows: _Windows, s: _Signals, cfgs: dict[str, SubstitutesConfig],
                 out: dict[str, tuple[np.ndarray, np.ndarray]], wanted: np.ndarray | None, block_size: int) -> None:
    """Scores the windows many at a time (one window is too small to score alone at
    numpy speed), keeps each anchor's best per cut, and merges the cuts into `out`."""
    anchors = windows.anchors if wanted is None else np.where(wanted[np.maximum(windows.anchors, 0)],
                                                               windows.anchors, -1)
    live = (anchors >= 0).any(axis=1)
    anchors, cands, cut = anchors[live], windows.cands[live], windows.cut[live]
    chunk, window = anchors.shape[1], cands.shape[1]
    products = np.unique(anchors[anchors >= 0])
    per_cut = {name: (np.full((len(products), windows.n_cuts, c.top_k), -1, np.int32),
                      np.zeros((len(products), windows.n_cuts, c.top_k), np.float32)) for name, c in cfgs.items()}
    comp_keys = {name: _complement_keys(s, c.complement_min_support) for name, c in cfgs.items()}
    step = max(1, block_size // (chunk * window))
    for lo in range(0, len(anchors), step):
        a, w = anchors[lo:lo + step], cands[lo:lo + step]
        sim = _window_content(s, a, w)
        valid = a.ravel() >= 0
        row = np.searchsorted(products, a.ravel()[valid])
        col = np.repeat(cut[lo:lo + step], chunk)[valid]
        for name, cfg in cfgs.items():
            score = _score_windows(a, w, sim, s, cfg, comp_keys[name]).reshape(-1, window)
            idx, val = top_k_rows(score[valid], np.repeat(w, chunk, axis=0)[valid], cfg.top_k)
            per_cut[name][0][row, col], per_cut[name][1][row, col] = idx, val
    for name, cfg in cfgs.items():
        idx, score = out[name]
        idx[products], score[products] = _merge_cuts(*per_cut[name], cfg.top_k)


def baseline_configs(cfg: SubstitutesConfig | None = None) -> dict[str, SubstitutesConfig]:
    """One-signal versions of `cfg` for the evaluation table: same category rules and
    content fields, no price band, no complement filter, no popularity prior."""
    cfg = cfg or SubstitutesConfig()
    plain = replace(cfg, popularity_weight=0.0, price_band=None, complement_min_support=0)
    return {
        "als-similar": replace(plain, content_weight=0.0, behaviour_shrinkage=0.0),
        "content-similar": replace(plain, behaviour_weight=0.0),
    }


def substitute_baselines(inter: Interactions, products: pd.DataFrame, als: ALSModel,
                         cfg: SubstitutesConfig | None = None, k: int = 10,
                         anchors: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """(P, k) lists of the one-signal baselines, keyed by model name (only the rows of
    `anchors` when given)."""
    none = np.full((inter.n_products, 1), -1, np.int32)
    cfgs = {name: replace(c, top_k=k) for name, c in baseline_configs(cfg).items()}
    fitted = fit_substitute_variants(inter, products, als, none, np.zeros_like(none), cfgs, anchors)
    return {name: idx for name, (idx, _) in fitted.items()}

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
pairs, so memory is bounded by the block, never P x P.
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


def _candidate_groups(inter: Interactions, cfg: SubstitutesConfig) -> list[tuple[np.ndarray, np.ndarray]]:
    """(anchors, candidates) product codes for each category that has products."""
    names = list(inter.category_names)
    code_of = {n: i for i, n in enumerate(names)}
    members = np.argsort(inter.product_category, kind="stable")
    bounds = np.searchsorted(inter.product_category[members], np.arange(len(names) + 1))
    by_cat = [members[bounds[c]:bounds[c + 1]] for c in range(len(names))]
    groups = []
    for c, anchors in enumerate(by_cat):
        if len(anchors) == 0:
            continue
        extra = [code_of[e] for e in (cfg.category_map or {}).get(names[c], []) if e in code_of and code_of[e] != c]
        cands = np.sort(np.concatenate([anchors, *(by_cat[e] for e in extra)])) if extra else anchors
        groups.append((anchors, cands))
    return groups


def _price_factor(anchor_lp: np.ndarray, cand_lp: np.ndarray, cfg: SubstitutesConfig) -> np.ndarray | None:
    """(anchors, cands) multiplier of the score: 1 inside the band (or price unknown)."""
    if cfg.price_band is None:
        return None
    if cfg.price_mode not in ("soft", "hard"):
        raise ValueError(f"price_mode must be 'soft' or 'hard', got {cfg.price_mode!r}")
    excess = np.abs(anchor_lp[:, None] - cand_lp[None, :])  # |log price ratio|
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
    exclude_complements = cfg.complement_min_support > 0
    content_sim[is_self] = 0
    score = np.float32(cfg.content_weight) * content_sim
    if cfg.behaviour_weight > 0:
        behaviour = s.factors[anchors] @ s.factors[cands].T
        behaviour *= _sqrt_confidence(s.n_orders[anchors], cfg)[:, None] * np.float32(cfg.behaviour_weight)
        behaviour *= _sqrt_confidence(s.n_orders[cands], cfg)[None, :]
        score += behaviour
    if cfg.popularity_weight > 0:
        score += np.float32(cfg.popularity_weight) * s.popularity[cands][None, :]
    factor = _price_factor(s.log_price[anchors], s.log_price[cands], cfg)
    if factor is not None:
        score *= factor
    score[score <= 0] = -np.inf  # no evidence at all (or outside a hard band) is no substitute
    if exclude_complements:
        # Strong complements go, unless content says they are variants of the anchor:
        # at least `variant_similarity` times as similar as its closest look-alike.
        # Relative, so it means the same in a terse catalog as in a wordy one.
        comp = s.complement_support[anchors][:, cands].toarray() >= cfg.complement_min_support
        closest = content_sim.max(axis=1, keepdims=True)
        comp &= (content_sim < np.float32(cfg.variant_similarity) * closest) | (content_sim <= 0)
        score[comp] = -np.inf
    score[is_self] = -np.inf
    return score


def top_k_rows(score: np.ndarray, cands: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Best k per row of `score` (columns are the ascending product codes `cands`) as (product codes,
    scores), best first, equal scores in product-code order; -inf entries become
    -1 / 0 padding."""
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
    order = np.lexsort((cands[part], -vals), axis=1)
    part, vals = np.take_along_axis(part, order, axis=1), np.take_along_axis(vals, order, axis=1)
    finite = np.isfinite(vals)
    idx = np.where(finite, cands[part], -1).astype(np.int32)
    vals = np.where(finite, vals, 0).astype(np.float32)
    if idx.shape[1] < k:
        pad = k - idx.shape[1]
        idx = np.pad(idx, ((0, 0), (0, pad)), constant_values=-1)
        vals = np.pad(vals, ((0, 0), (0, pad)))
    return idx, vals


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
    computed once); they must agree on content fields, category_map and block_size.
    `anchors` (product codes) limits the work to those rows; the others stay empty."""
    first = next(iter(cfgs.values()))
    shared = (first.content_config(), first.category_map, first.block_size)
    if any((c.content_config(), c.category_map, c.block_size) != shared for c in cfgs.values()):
        raise ValueError("substitute variants must share content fields, category_map and block_size")
    s = _signals(inter, products, als, complements_idx, complements_support, first.content_config())
    out = {name: (np.full((inter.n_products, c.top_k), -1, np.int32), np.zeros((inter.n_products, c.top_k), np.float32))
           for name, c in cfgs.items()}
    wanted = None
    if anchors is not None:
        wanted = np.zeros(inter.n_products, bool)
        wanted[anchors] = True
    for group_anchors, cands in _candidate_groups(inter, first):
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
    return out


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

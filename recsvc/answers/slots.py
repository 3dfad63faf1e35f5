"""A/B test slots in an answer: the running experiments' placements, applied to it.

For each experiment running on the RPC (`recsvc.experiments.place_test_item`): a test
customer gets a test item inserted at the slot (the last item drops out when the
answer is full), with reason TEST_SLOT and an exposure id; a control customer keeps
the organic list, and the organic item in the slot carries the exposure id. The
exposure is queued for the background writer (`ExposureLog`), never written here.

Out of scope (no exposure in either arm, so both arms see the same requests):
requests narrowed by price, attribute or category filters, which a test item would
not honour, and answers shorter than the slot. A test item is never one the request
excludes (anchors, cart, shown, filter.exclude_item_ids) nor one already in the list.

Targeting (`Experiment.targeting`): complements take test items only from the
categories that go with the anchors' categories; substitutes only from the item's
own (and mapped) categories; recommend has no category context and is not narrowed.
"""
from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from recsvc.answers.common import Answer, Context, ItemFilter, Live, Reason, products_of
from recsvc.experiments import place_test_item

if TYPE_CHECKING:
    from recsvc.experiments_service import ExperimentRuntime

TEST_SLOT_EXPLANATION = "new in the shop: we would like to know what you think"


def with_test_slots(xr: "ExperimentRuntime", live: Live, rpc: str, answer: Answer, context: Context,
                    filt: ItemFilter, anchors: Sequence[str] = ()) -> Answer:
    """`answer` with the experiments' placements applied (changed in place, and returned)."""
    bound = xr.bound()
    experiments = bound.by_rpc[rpc]
    if not experiments or bound.model is not live.model:  # the usual case: nothing to do
        return answer
    if not (context.user_id or context.session_id) or filt.attributes or filt.categories \
            or filt.min_price is not None or filt.max_price is not None:
        return answer
    m = live.model
    now = datetime.now(timezone.utc)
    # The answer carries its product codes and what the request excluded (anchors, cart,
    # shown, filter exclusions; substitutes also frequent complements, recommend also
    # past purchases): no second lookup of the ids here.
    codes = list(answer.product_codes) if answer.product_codes is not None \
        else m.product_index.codes(answer.item_ids).tolist()
    excluded = list(answer.excluded_codes) if answer.excluded_codes is not None else []
    stock = live.inventory.view().product
    allowed = None
    for x in experiments:
        if len(codes) < x.experiment.slot:
            continue
        if x.experiment.targeting and allowed is None:
            allowed = _fitting_categories(live, rpc, products_of(m, anchors))
        # Excluded products ride after the answer: place_test_item skips what it "shows".
        p = place_test_item(x, rpc, codes + excluded, stock, user_id=context.user_id or None,
                            session_id=context.session_id or None, now=now, allowed_categories=allowed)
        if p is None:
            continue
        xr.record(p.exposure)
        if answer.exposure_ids is None:
            answer.exposure_ids = [""] * len(answer.item_ids)
        if p.is_test:
            _insert(live, answer, p.position, p.item_code, p.exposure_id)
            codes.insert(p.position, p.item_code)
            del codes[len(answer.item_ids):]
            answer.product_codes = codes
        else:
            answer.exposure_ids[p.position] = p.exposure_id
    return answer


def _fitting_categories(live: Live, rpc: str, anchors: Sequence[int]) -> Collection[int] | None:
    m = live.model
    if rpc == "complements":
        own = {int(m.product_category[a]) for a in anchors}
        rows = m.category_complements_idx[sorted(own)]
        return set(rows[rows >= 0].tolist())
    if rpc == "substitutes":
        mapped = live.config.substitutes_category_map
        out = set()
        for a in anchors:
            own = int(m.product_category[a])
            out.add(own)
            out.update(m.category_index[c] for c in mapped.get(m.category_names[own], []) if c in m.category_index)
        return out
    return None


def _insert(live: Live, answer: Answer, position: int, code: int, exposure_id: str) -> None:
    """Insert the test item at `position`; the list keeps its length (the last one drops)."""
    m = live.model
    limit = len(answer.item_ids)
    price = float(live.prices.view().product[code])
    # Between its neighbours, so the answer stays sorted by score.
    above = answer.scores[position - 1] if position > 0 else answer.scores[position]
    score = (above + answer.scores[position]) / 2
    row = (str(m.product_ids[code]), score, Reason.TEST_SLOT, TEST_SLOT_EXPLANATION, str(m.product_title[code]),
           m.category_names[int(m.product_category[code])], None if price != price else price, True, "",
           exposure_id)
    columns = (answer.item_ids, answer.scores, answer.reasons, answer.explanations, answer.titles,
               answer.categories, answer.prices, answer.in_stock, answer.variant_ids, answer.exposure_ids)
    for col, value in zip(columns, row):
        col.insert(position, value)  # type: ignore[attr-defined]
        del col[limit:]  # type: ignore[attr-defined]

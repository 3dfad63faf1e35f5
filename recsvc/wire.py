"""Messages <-> records: the only place besides server.py and client.py that knows protobuf.

Requests become the frozen query records of `recsvc.answers`; answers become response
messages. Presence matters: `limit` unset means the configured default, while
`limit = 0` is a bad request (proto3 `optional` tells them apart).
"""
from __future__ import annotations

import math
from datetime import datetime, timezone

from google.protobuf.timestamp_pb2 import Timestamp

from recsvc.answers import (Answer, AnsweredItem, BadRequest, BundleAnswer, BundleQuery, ComplementsQuery, Context,
                            ItemFilter, RecommendQuery, SubstitutesQuery)
from recsvc.promotions import Promotion
from recsvc.v1 import recommender_pb2 as pb

_KINDS = {pb.Promotion.KIND_PERCENT: "percent", pb.Promotion.KIND_AMOUNT: "amount"}
_KIND_CODES = {v: k for k, v in _KINDS.items()}


_NO_CONTEXT, _NO_FILTER = Context(), ItemFilter()


def context_of(c: pb.Context) -> Context:
    if not c.ListFields():  # most calls carry no context: skip building one
        return _NO_CONTEXT
    return Context(user_id=c.user_id, cart_item_ids=tuple(c.cart_item_ids), shown_item_ids=tuple(c.shown_item_ids),
                   shop_id=c.shop_id, session_id=c.session_id)


def filter_of(f: pb.Filter) -> ItemFilter:
    if not f.ListFields():
        return _NO_FILTER
    lo = f.min_price if f.HasField("min_price") else None
    hi = f.max_price if f.HasField("max_price") else None
    for name, x in (("filter.min_price", lo), ("filter.max_price", hi)):
        if x is not None and (not math.isfinite(x) or x < 0):
            raise BadRequest(name, f"must be a number >= 0, got {x}")
    return ItemFilter(include_out_of_stock=f.include_out_of_stock, exclude_item_ids=tuple(f.exclude_item_ids),
                      categories=tuple(f.categories), min_price=lo, max_price=hi, attributes=dict(f.attributes))


def _limit(msg, name: str, default: int) -> int:
    return getattr(msg, name) if msg.HasField(name) else default


def complements_query(r: pb.ComplementsRequest, default_limit: int) -> ComplementsQuery:
    for i, item_id in enumerate(r.item_ids):
        if not item_id:
            raise BadRequest(f"item_ids[{i}]", "must not be empty")
    return ComplementsQuery(item_ids=tuple(r.item_ids), limit=_limit(r, "limit", default_limit),
                            context=context_of(r.context), filter=filter_of(r.filter))


def substitutes_query(r: pb.SubstitutesRequest, default_limit: int) -> SubstitutesQuery:
    return SubstitutesQuery(item_id=r.item_id, limit=_limit(r, "limit", default_limit),
                            context=context_of(r.context), filter=filter_of(r.filter))


def bundle_query(r: pb.BundleRequest) -> BundleQuery:
    return BundleQuery(item_id=r.item_id, max_items=_limit(r, "max_items", 1),
                       context=context_of(r.context), filter=filter_of(r.filter))


def recommend_query(r: pb.RecommendRequest, default_limit: int) -> RecommendQuery:
    return RecommendQuery(limit=_limit(r, "limit", default_limit), context=context_of(r.context),
                          filter=filter_of(r.filter))


def _item(i: AnsweredItem) -> dict:
    d = {"item_id": i.item_id, "score": i.score, "reason": i.reason, "explanation": i.explanation, "title": i.title,
         "category": i.category, "in_stock": i.in_stock, "variant_id": i.variant_id}
    if i.price is not None:
        d["price"] = i.price
    if i.exposure_id:
        d["exposure_id"] = i.exposure_id
    return d


def item_message(i: AnsweredItem) -> pb.Item:
    return pb.Item(**_item(i))


def items_response(a: Answer, request_id: str) -> pb.ItemsResponse:
    # Dicts and one message constructor cost a third of a message per item.
    items = []
    for item_id, score, reason, why, title, category, price, in_stock, variant in zip(
            a.item_ids, a.scores, a.reasons, a.explanations, a.titles, a.categories, a.prices, a.in_stock,
            a.variant_ids):
        d = {"item_id": item_id, "score": score, "reason": reason, "explanation": why, "title": title,
             "category": category, "in_stock": in_stock}
        if price is not None:
            d["price"] = price
        if variant:
            d["variant_id"] = variant
        items.append(d)
    if a.exposure_ids is not None:  # A/B slots: rare, so kept off the loop above
        for d, exposure_id in zip(items, a.exposure_ids):
            if exposure_id:
                d["exposure_id"] = exposure_id
    return pb.ItemsResponse(items=items, model_version=a.model_version, request_id=request_id)


def bundle_response(b: BundleAnswer, request_id: str) -> pb.BundleResponse:
    msg = pb.BundleResponse(anchor=_item(b.anchor), items=[_item(i) for i in b.items],
                            list_price=b.list_price, bundle_price=b.bundle_price, saving=b.saving,
                            explanation=b.explanation, model_version=b.model_version, request_id=request_id)
    if b.promotion is not None:
        msg.promotion.CopyFrom(promotion_message(b.promotion))
    if b.valid_until is not None:
        msg.valid_until.CopyFrom(timestamp(b.valid_until))
    return msg


# --- promotions -------------------------------------------------------------------------

def timestamp(t: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(t.astimezone(timezone.utc))
    return ts


def datetime_of(msg, name: str, field_path: str) -> datetime:
    if not msg.HasField(name):
        raise BadRequest(field_path, "is required")
    return getattr(msg, name).ToDatetime(tzinfo=timezone.utc)


def promotion_of(p: pb.Promotion) -> Promotion:
    if p.kind not in _KINDS:
        raise BadRequest("promotion.kind", "must be KIND_PERCENT or KIND_AMOUNT")
    return Promotion(id=p.id, name=p.name, item_ids=list(p.item_ids), categories=list(p.categories),
                     kind=_KINDS[p.kind], value=p.value, cap=p.cap if p.HasField("cap") else None,
                     starts_at=datetime_of(p, "starts_at", "promotion.starts_at"),
                     ends_at=datetime_of(p, "ends_at", "promotion.ends_at"), priority=p.priority,
                     min_items=p.min_items if p.HasField("min_items") else 2)


def promotion_message(p: Promotion) -> pb.Promotion:
    msg = pb.Promotion(id=p.id, name=p.name, item_ids=p.item_ids, categories=p.categories,
                       kind=_KIND_CODES.get(p.kind, pb.Promotion.KIND_UNSPECIFIED), value=p.value,
                       starts_at=timestamp(p.starts_at), ends_at=timestamp(p.ends_at), priority=p.priority,
                       min_items=p.min_items)
    if p.cap is not None:
        msg.cap = p.cap
    return msg

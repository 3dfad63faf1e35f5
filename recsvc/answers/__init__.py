"""Answers to the chatbot's four questions, as plain Python over one `Live` snapshot.

No gRPC here: `recsvc.server` converts requests into the query records below and the
answers back into messages, so every rule is tested without a server.

>>> answer = complements(live, ComplementsQuery(item_ids=("JKT-1-M",), limit=5))  # doctest: +SKIP
>>> [(i.item_id, i.reason.name, i.explanation) for i in answer.items]             # doctest: +SKIP
[('JEANS-1', 'CO_PURCHASE', 'bought together in 312 orders'), ...]
"""
from recsvc.answers.bundles import BundleAnswer, BundleQuery, Unpriced, bundle
from recsvc.answers.common import (Answer, AnsweredItem, BadRequest, Context, ItemFilter, Live, Reason,
                                   UnknownItem)
from recsvc.answers.complements import ComplementsQuery, complements
from recsvc.answers.recommend import RecommendQuery, recommend
from recsvc.answers.substitutes import SubstitutesQuery, substitutes

__all__ = [
    "Answer", "AnsweredItem", "BadRequest", "BundleAnswer", "BundleQuery", "ComplementsQuery", "Context",
    "ItemFilter", "Live", "Reason", "RecommendQuery", "SubstitutesQuery", "UnknownItem", "Unpriced",
    "bundle", "complements", "recommend", "substitutes",
]

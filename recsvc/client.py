"""A small Python client for both services.

>>> with Client("localhost:50051") as c:                                   # doctest: +SKIP
...     for item in c.complements(["JKT-1-M"], limit=3).items:
...         print(item.item_id, item.explanation)
JEANS-1 bought together in 312 orders

Every call has a deadline (`timeout`, 2 s by default) and sends an `x-request-id`
when one is given. Errors arrive as `grpc.RpcError` with the server's status and
message (`e.code()`, `e.details()`).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timezone

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from recsvc.v1 import recommender_pb2 as pb
from recsvc.v1 import recommender_pb2_grpc as pb_grpc


def _filter(include_out_of_stock: bool = False, exclude: Iterable[str] = (), categories: Iterable[str] = (),
            min_price: float | None = None, max_price: float | None = None,
            attributes: Mapping[str, str] | None = None, size: str | None = None) -> pb.Filter:
    f = pb.Filter(include_out_of_stock=include_out_of_stock, exclude_item_ids=list(exclude),
                  categories=list(categories), attributes=dict(attributes or {}))
    if size:
        f.attributes["size"] = size
    if min_price is not None:
        f.min_price = min_price
    if max_price is not None:
        f.max_price = max_price
    return f


def _context(user: str, session: str, cart: Iterable[str], shown: Iterable[str]) -> pb.Context:
    return pb.Context(user_id=user, session_id=session, cart_item_ids=list(cart), shown_item_ids=list(shown))


def _ts(t: datetime):
    from google.protobuf.timestamp_pb2 import Timestamp

    ts = Timestamp()
    ts.FromDatetime((t if t.tzinfo else t.replace(tzinfo=timezone.utc)).astimezone(timezone.utc))
    return ts


class Client:
    def __init__(self, target: str = "localhost:50051", *, timeout: float = 2.0,
                 channel: grpc.Channel | None = None) -> None:
        self._own = channel is None
        self.channel = channel or grpc.insecure_channel(target)
        self.timeout = timeout
        self.recommender = pb_grpc.RecommenderStub(self.channel)
        self.admin = pb_grpc.AdminStub(self.channel)
        self._health = health_pb2_grpc.HealthStub(self.channel)

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._own:
            self.channel.close()

    def _call(self, method, request, request_id: str | None = None):
        metadata = (("x-request-id", request_id),) if request_id else None
        return method(request, timeout=self.timeout, metadata=metadata)

    # --- chatbot-facing -----------------------------------------------------------------
    # `user` personalises and keys A/B assignment; an anonymous chat passes `session`.
    def complements(self, item_ids: Iterable[str], *, limit: int | None = None, user: str = "",
                    session: str = "", cart: Iterable[str] = (), shown: Iterable[str] = (),
                    request_id: str | None = None, **filters) -> pb.ItemsResponse:
        r = pb.ComplementsRequest(item_ids=list(item_ids), context=_context(user, session, cart, shown),
                                  filter=_filter(**filters))
        if limit is not None:
            r.limit = limit
        return self._call(self.recommender.GetComplements, r, request_id)

    def substitutes(self, item_id: str, *, limit: int | None = None, user: str = "", session: str = "",
                    cart: Iterable[str] = (), shown: Iterable[str] = (), request_id: str | None = None,
                    **filters) -> pb.ItemsResponse:
        r = pb.SubstitutesRequest(item_id=item_id, context=_context(user, session, cart, shown),
                                  filter=_filter(**filters))
        if limit is not None:
            r.limit = limit
        return self._call(self.recommender.GetSubstitutes, r, request_id)

    def bundle(self, item_id: str, *, max_items: int | None = None, user: str = "", session: str = "",
               cart: Iterable[str] = (), request_id: str | None = None, **filters) -> pb.BundleResponse:
        r = pb.BundleRequest(item_id=item_id, context=_context(user, session, cart, ()), filter=_filter(**filters))
        if max_items is not None:
            r.max_items = max_items
        return self._call(self.recommender.GetBundle, r, request_id)

    def recommend(self, *, user: str = "", session: str = "", limit: int | None = None, cart: Iterable[str] = (),
                  shown: Iterable[str] = (), request_id: str | None = None, **filters) -> pb.ItemsResponse:
        r = pb.RecommendRequest(context=_context(user, session, cart, shown), filter=_filter(**filters))
        if limit is not None:
            r.limit = limit
        return self._call(self.recommender.Recommend, r, request_id)

    # --- operations ---------------------------------------------------------------------
    def update_stock(self, levels: Mapping[str, int]) -> pb.UpdateStockResponse:
        return self._call(self.admin.UpdateStock, pb.UpdateStockRequest(
            levels=[pb.StockLevel(item_id=k, quantity=v) for k, v in levels.items()]))

    def get_stock(self, item_ids: Iterable[str]) -> dict[str, bool]:
        resp = self._call(self.admin.GetStock, pb.GetStockRequest(item_ids=list(item_ids)))
        return {s.item_id: s.in_stock for s in resp.items}

    def update_prices(self, prices: Mapping[str, float]) -> pb.UpdatePricesResponse:
        return self._call(self.admin.UpdatePrices, pb.UpdatePricesRequest(
            prices=[pb.PriceLevel(item_id=k, price=v) for k, v in prices.items()]))

    def create_promotion(self, *, name: str, kind: str, value: float, starts_at: datetime, ends_at: datetime,
                         item_ids: Iterable[str] = (), categories: Iterable[str] = (), cap: float | None = None,
                         priority: int = 0, min_items: int | None = None, promo_id: str = "") -> pb.Promotion:
        kinds = {"percent": pb.Promotion.KIND_PERCENT, "amount": pb.Promotion.KIND_AMOUNT}
        p = pb.Promotion(id=promo_id, name=name, item_ids=list(item_ids), categories=list(categories),
                         kind=kinds.get(kind, pb.Promotion.KIND_UNSPECIFIED), value=value,
                         starts_at=_ts(starts_at), ends_at=_ts(ends_at), priority=priority)
        if cap is not None:
            p.cap = cap
        if min_items is not None:
            p.min_items = min_items
        return self._call(self.admin.CreatePromotion, pb.CreatePromotionRequest(promotion=p))

    def list_promotions(self, *, active_only: bool = False, at: datetime | None = None) -> list[pb.Promotion]:
        r = pb.ListPromotionsRequest(active_only=active_only)
        if at is not None:
            r.at.CopyFrom(_ts(at))
        return list(self._call(self.admin.ListPromotions, r).promotions)

    def delete_promotion(self, promo_id: str) -> bool:
        return self._call(self.admin.DeletePromotion, pb.DeletePromotionRequest(id=promo_id)).deleted

    def model_info(self) -> pb.ModelInfo:
        return self._call(self.admin.GetModelInfo, pb.GetModelInfoRequest())

    def reload(self, timeout: float = 120.0) -> pb.ReloadResponse:
        return self.admin.Reload(pb.ReloadRequest(), timeout=timeout)  # loading takes a while

    def server_stats(self) -> pb.ServerStats:
        return self._call(self.admin.GetServerStats, pb.GetServerStatsRequest())

    # --- A/B slots --------------------------------------------------------------------
    def report_events(self, events: Iterable[pb.Event]) -> pb.ReportEventsResponse:
        return self._call(self.recommender.ReportEvents, pb.ReportEventsRequest(events=list(events)))

    def create_experiment(self, definition: str | pb.Experiment) -> pb.Experiment:
        """From a JSON/YAML document, or an `Experiment` message."""
        r = pb.CreateExperimentRequest(definition=definition) if isinstance(definition, str) \
            else pb.CreateExperimentRequest(experiment=definition)
        return self._call(self.admin.CreateExperiment, r)

    def list_experiments(self) -> list[pb.Experiment]:
        return list(self._call(self.admin.ListExperiments, pb.ListExperimentsRequest()).experiments)

    def get_experiment(self, experiment_id: str) -> pb.Experiment:
        return self._call(self.admin.GetExperiment, pb.GetExperimentRequest(id=experiment_id))

    def set_experiment_status(self, experiment_id: str, status: str) -> pb.Experiment:
        """status: pause, resume, stop (or paused, active, stopped)."""
        return self._call(self.admin.SetExperimentStatus,
                          pb.SetExperimentStatusRequest(id=experiment_id, status=status))

    def experiment_report(self, experiment_id: str) -> pb.ExperimentReportResponse:
        return self._call(self.admin.ExperimentReport, pb.ExperimentReportRequest(id=experiment_id))

    def export_experiment(self, experiment_id: str) -> str:
        return self._call(self.admin.ExportExperiment, pb.ExportExperimentRequest(id=experiment_id)).csv

    def health(self, service: str = "") -> str:
        """SERVING / NOT_SERVING / ... for `service` ("" = the whole server)."""
        resp = self._health.Check(health_pb2.HealthCheckRequest(service=service), timeout=self.timeout)
        return health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)

"""Messages <-> records for A/B slots: experiments, events, reports (see wire.py)."""
from __future__ import annotations

from datetime import datetime, timezone

from recsvc.answers import BadRequest
from recsvc.events import Event, IngestResult
from recsvc.experiments import Experiment
from recsvc.experiments_service import experiment_of
from recsvc.model import Model
from recsvc.report import ItemRow, Report
from recsvc.v1 import recommender_pb2 as pb
from recsvc.wire import timestamp

EVENT_KINDS = {pb.EVENT_TYPE_IMPRESSION: "impression", pb.EVENT_TYPE_CLICK: "click",
               pb.EVENT_TYPE_ADD_TO_CART: "add_to_cart", pb.EVENT_TYPE_PURCHASE: "purchase"}


def events_of(r: pb.ReportEventsRequest, model: Model | None, received: datetime) -> list[Event]:
    """Events as records; an item named by a variant id becomes its product (exposures
    are of products); an unset time is the time received."""
    out = []
    for e in r.events:
        item_id = e.item_id or None
        if item_id and model is not None:
            hit = model.lookup(item_id)
            if hit is not None:
                item_id = str(model.product_ids[hit[0]])
        out.append(Event(event_id=e.event_id, kind=EVENT_KINDS.get(e.type, ""),
                         at=e.time.ToDatetime(tzinfo=timezone.utc) if e.HasField("time") else received,
                         exposure_id=e.exposure_id or None, user_id=e.user_id or None,
                         session_id=e.session_id or None, item_id=item_id))
    return out


def ingest_response(r: IngestResult) -> pb.ReportEventsResponse:
    return pb.ReportEventsResponse(accepted=r.accepted, duplicates=r.duplicates,
                                   rejected=[pb.RejectedEvent(event_id=x.event_id, reason=x.reason)
                                             for x in r.rejected])


def experiment_from_message(m: pb.Experiment) -> Experiment:
    d: dict = {"id": m.id, "name": m.name, "item_ids": list(m.item_ids), "rpcs": list(m.rpcs), "slot": m.slot,
               "share_pct": m.share_pct, "targeting": m.targeting}
    for name in ("starts_at", "ends_at"):
        if not m.HasField(name):
            raise BadRequest(f"experiment.{name}", "is required")
        d[name] = getattr(m, name).ToDatetime(tzinfo=timezone.utc)
    for name in ("control_pct", "floor_pct", "top_n"):
        if m.HasField(name):
            d[name] = getattr(m, name)
    for name in ("allocation", "metric", "status", "salt"):
        if getattr(m, name):
            d[name] = getattr(m, name)
    return experiment_of(d)


def experiment_message(e: Experiment) -> pb.Experiment:
    return pb.Experiment(id=e.id, name=e.name, item_ids=e.item_ids, rpcs=e.rpcs, slot=e.slot,
                         share_pct=e.share_pct, starts_at=timestamp(e.starts_at), ends_at=timestamp(e.ends_at),
                         control_pct=e.control_pct, allocation=e.allocation, floor_pct=e.floor_pct, top_n=e.top_n,
                         metric=e.metric, targeting=e.targeting, status=e.status, salt=e.salt)


def _row(r: ItemRow) -> pb.ReportRow:
    return pb.ReportRow(item_id=r.item_id, arm=r.arm, exposures=r.exposures, impressions=r.impressions,
                        clicks=r.clicks, add_to_carts=r.add_to_carts, purchases=r.purchases, rate=r.rate,
                        ci_low=r.ci_low, ci_high=r.ci_high, p_top_n=r.p_top_n, in_top_n=r.in_top_n)


def report_message(r: Report, text: str) -> pb.ExperimentReportResponse:
    f, s = r.effect, r.stopping
    stopping = pb.StoppingAdvice(confidence=s.confidence, p_settled=s.p_settled, settled=s.settled)
    if s.more_exposures is not None:
        stopping.more_exposures = s.more_exposures
    return pb.ExperimentReportResponse(
        experiment=experiment_message(r.experiment), items=[_row(x) for x in r.items], control=_row(r.control),
        effect=pb.SlotEffect(test_exposures=f.test_exposures, test_conversions=f.test_conversions,
                             control_exposures=f.control_exposures, control_conversions=f.control_conversions,
                             test_rate=f.test_rate, control_rate=f.control_rate, difference=f.difference,
                             ci_low=f.ci_low, ci_high=f.ci_high, p_test_better=f.p_test_better),
        stopping=stopping, generated_at=timestamp(r.generated_at), rejected_events=r.rejected_events or 0,
        text=text)

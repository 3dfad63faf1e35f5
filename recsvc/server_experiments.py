"""gRPC handlers for A/B slots, mixed into the services of server.py (`self._rt`: the Runtime).

Errors travel like every other call's (recsvc.interceptors): an invalid definition or
an oversized event batch is INVALID_ARGUMENT with the message, an unknown experiment
NOT_FOUND, a state store that is down UNAVAILABLE.
"""
from __future__ import annotations

from datetime import datetime, timezone

from recsvc import wire_experiments as wx
from recsvc.answers import BadRequest
from recsvc.experiments_service import parse_definition
from recsvc.interceptors import NoModel
from recsvc.report import format_report
from recsvc.runtime import Runtime
from recsvc.v1 import recommender_pb2 as pb


class EventRPCs:
    _rt: Runtime

    def ReportEvents(self, request, context):
        live = self._rt.live()
        events = wx.events_of(request, live.model if live else None, datetime.now(timezone.utc))
        return wx.ingest_response(self._rt.experiments.ingest(events))


class ExperimentAdminRPCs:
    _rt: Runtime

    def _catalog_ids(self):
        live = self._rt.live()
        if live is None:
            raise NoModel("no model is loaded yet: test items are checked against the served catalog")
        return live.model.product_index

    def CreateExperiment(self, request, context):
        which = request.WhichOneof("source")
        if which is None:
            raise BadRequest("experiment", "give the experiment's fields or a JSON/YAML definition")
        e = parse_definition(request.definition) if which == "definition" \
            else wx.experiment_from_message(request.experiment)
        return wx.experiment_message(self._rt.experiments.create(e, self._catalog_ids))

    def ListExperiments(self, request, context):
        return pb.ListExperimentsResponse(
            experiments=[wx.experiment_message(e) for e in self._rt.experiments.list()])

    def GetExperiment(self, request, context):
        return wx.experiment_message(self._rt.experiments.get(request.id))

    def SetExperimentStatus(self, request, context):
        return wx.experiment_message(self._rt.experiments.set_status(request.id, request.status))

    def ExperimentReport(self, request, context):
        r = self._rt.experiments.report(request.id)
        return wx.report_message(r, format_report(r))

    def ExportExperiment(self, request, context):
        return pb.ExportExperimentResponse(csv=self._rt.experiments.export_csv(request.id))

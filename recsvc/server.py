"""gRPC wiring: validation -> answers -> response, plus health, reflection and shutdown.

Everything below this module speaks records and numpy (`recsvc.answers`,
`recsvc.operations`, `recsvc.runtime`); `recsvc.wire` converts, `recsvc.interceptors`
handles request ids, deadlines, errors and timing for every call.
The chatbot's four RPCs are first offered to `recsvc.fast.CompiledRPC`, which runs the
model's compiled kernel and returns the response already serialised; whatever it leaves
(no kernel, A/B slots, errors, requests the kernel does not handle) the Python path
answers.

Health (`grpc.health.v1`): "" and "recsvc.v1.Recommender" are NOT_SERVING until a
model is loaded, and again once shutdown begins; "recsvc.v1.Admin" serves from the
start (stock and promotions can be managed before the first model arrives).
Overload: grpc's `maximum_concurrent_rpcs` answers RESOURCE_EXHAUSTED at once for
calls beyond `max_concurrent_rpcs` admitted ones, so the queue (and latency) stays
bounded and the server recovers as soon as the load drops.
Threads: the chatbot's calls run on `threads` handler threads (default 1). Handlers
hold the GIL, so a second one adds no CPU; it only takes turns with the thread that
takes calls off grpc's queue, and when that thread falls behind, calls wait inside
grpc core where the admission limit cannot see them (seconds of latency under
overload, then CANCELLED). Admin calls (a stock upload can take a second), event
reports and reflection streams run on a pool of their own, so they do not hold up a
recommendation queued behind them.
"""
from __future__ import annotations

import functools
import logging
import os
import signal
import socket
import threading
import time
import types
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass
from datetime import datetime, timezone

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc

from recsvc import operations, wire
from recsvc.affinity import pin_to_cpu
from recsvc.answers import BadRequest, Live, bundle, complements, recommend, substitutes
from recsvc.answers.slots import with_test_slots
from recsvc.config import Config, env_typos
from recsvc.fast import CompiledRPC
from recsvc.interceptors import HandlerStats, NoModel, ServiceInterceptor, request_id
from recsvc.logging_setup import configure as configure_logging
from recsvc.metrics import Metrics
from recsvc.runtime import Runtime
from recsvc.server_experiments import EventRPCs, ExperimentAdminRPCs
from recsvc.v1 import recommender_pb2 as pb
from recsvc.v1 import recommender_pb2_grpc as pb_grpc

log = logging.getLogger("recsvc.server")
SERVICES = tuple(pb.DESCRIPTOR.services_by_name[s].full_name for s in ("Recommender", "Admin"))
RECOMMENDER, ADMIN = SERVICES
# SERVING while the model `current` names is the one served; NOT_SERVING while `current`
# cannot be loaded (unreadable, corrupt): "" and Recommender stay SERVING on the old model.
MODEL_HEALTH = "recsvc.model"


def _live(runtime: Runtime) -> Live:
    live = runtime.live()
    if live is None:
        raise NoModel(f"no model is loaded yet (watching {runtime.model_dir}); "
                      f"{runtime.status.last_error or 'waiting for a bundle to become current'}")
    return live


class RecommenderService(EventRPCs, pb_grpc.RecommenderServicer):
    def __init__(self, runtime: Runtime, on_answer: Callable[[str, list[int]], None] | None = None) -> None:
        self._rt = runtime
        # on_answer(method, reasons of the items): metrics, counted from the answer's own
        # list rather than read back out of the response message
        self._on_answer = on_answer or (lambda method, reasons: None)

    def GetComplements(self, request, context):
        live = _live(self._rt)
        q = wire.complements_query(request, live.config.default_limit)
        a = with_test_slots(self._rt.experiments, live, "complements", complements(live, q), q.context, q.filter,
                            q.item_ids)
        self._on_answer("GetComplements", a.reasons)
        return wire.items_response(a, request_id())

    def GetSubstitutes(self, request, context):
        live = _live(self._rt)
        q = wire.substitutes_query(request, live.config.default_limit)
        a = with_test_slots(self._rt.experiments, live, "substitutes", substitutes(live, q), q.context, q.filter,
                            (q.item_id,))
        self._on_answer("GetSubstitutes", a.reasons)
        return wire.items_response(a, request_id())

    def GetBundle(self, request, context):
        live = _live(self._rt)
        now = datetime.now(timezone.utc)
        b = bundle(live, wire.bundle_query(request), now)
        self._on_answer("GetBundle", [i.reason for i in b.items])
        return wire.bundle_response(b, request_id())

    def Recommend(self, request, context):
        live = _live(self._rt)
        q = wire.recommend_query(request, live.config.default_limit)
        a = with_test_slots(self._rt.experiments, live, "recommend", recommend(live, q), q.context, q.filter)
        self._on_answer("Recommend", a.reasons)
        return wire.items_response(a, request_id())


class AdminService(ExperimentAdminRPCs, pb_grpc.AdminServicer):
    def __init__(self, runtime: Runtime, stats: HandlerStats, metrics: Metrics) -> None:
        self._rt, self._stats, self._metrics = runtime, stats, metrics

    def UpdateStock(self, request, context):
        levels = [(s.item_id, s.quantity) for s in request.levels]
        seq = operations.update_stock(_live(self._rt), levels)
        self._metrics.stock_updates.inc(len(levels))  # acknowledged: the store committed them
        return pb.UpdateStockResponse(applied=len(levels), seq=seq)

    def GetStock(self, request, context):
        states = operations.stock_of(_live(self._rt), list(request.item_ids))
        return pb.GetStockResponse(items=[pb.StockState(item_id=i, in_stock=s) for i, s in states])

    def UpdatePrices(self, request, context):
        n = operations.update_prices(_live(self._rt), [(p.item_id, p.price) for p in request.prices])
        self._metrics.price_updates.inc(n)
        return pb.UpdatePricesResponse(applied=n)

    def CreatePromotion(self, request, context):
        if not request.HasField("promotion"):
            raise BadRequest("promotion", "is required")
        created = operations.create_promotion(self._rt.promotions, wire.promotion_of(request.promotion))
        return wire.promotion_message(created)

    def ListPromotions(self, request, context):
        at = None
        if request.active_only:
            at = request.at.ToDatetime(tzinfo=timezone.utc) if request.HasField("at") else datetime.now(timezone.utc)
        promos = operations.list_promotions(self._rt.promotions, at)
        return pb.ListPromotionsResponse(promotions=[wire.promotion_message(p) for p in promos])

    def DeletePromotion(self, request, context):
        if not request.id:
            raise BadRequest("id", "must name a promotion")
        return pb.DeletePromotionResponse(deleted=self._rt.promotions.delete(request.id))

    def GetModelInfo(self, request, context):
        info = operations.model_info(self._rt)
        msg = pb.ModelInfo(version=info.version, path=info.path, created=info.created,
                           format_version=info.format_version, products=info.products, variants=info.variants,
                           categories=info.categories, users=info.users, load_seconds=info.load_seconds,
                           current_version=info.current_version, versions=info.versions,
                           last_reload_error=info.last_reload_error)
        if info.loaded_at is not None:
            msg.loaded_at.CopyFrom(wire.timestamp(info.loaded_at))
        return msg

    def Reload(self, request, context):
        r = self._rt.reload(force=True)
        return pb.ReloadResponse(changed=r.changed, model_version=r.version, previous_version=r.previous,
                                 message=r.message)

    def GetServerStats(self, request, context):
        return pb.ServerStats(
            pid=os.getpid(), uptime_s=time.time() - self._stats.started, model_version=self._rt.status.version,
            in_flight=self._stats.in_flight, swaps=self._rt.status.swaps,
            methods=[pb.MethodStats(method=s.method, count=s.count, errors=s.errors, handler_p50_ms=s.p50_ms,
                                    handler_p99_ms=s.p99_ms, handler_max_ms=s.max_ms,
                                    handler_cpu_p50_ms=s.cpu_p50_ms, handler_cpu_p99_ms=s.cpu_p99_ms)
                     for s in self._stats.snapshot()])


@dataclass
class RunningServer:
    server: grpc.Server
    port: int
    runtime: Runtime
    health: health.HealthServicer
    stats: HandlerStats
    metrics: Metrics
    metrics_port: int = 0  # bound /metrics port; 0: off

    def stop(self, grace: float | None = None) -> None:
        """Stop taking calls, let in-flight ones finish (up to `grace` s), release state."""
        self.health.enter_graceful_shutdown()  # probes see NOT_SERVING while we drain
        self.server.stop(self.runtime.config.grace_s if grace is None else grace).wait()
        self.runtime.close()
        self.metrics.close()


def build_server(config: Config, runtime: Runtime | None = None) -> RunningServer:
    """Start a server on config.host:config.port (0: a free port) and load the model.

    Returns once the first load was tried: serving if a bundle was current, NOT_SERVING
    (and watching) otherwise.
    """
    runtime = runtime or Runtime(config)
    stats, metrics = HandlerStats(), Metrics()
    metrics.track_calls(stats)
    executor = futures.ThreadPoolExecutor(config.threads, thread_name_prefix="recsvc-rpc")
    # Admin, event reports (a store write) and reflection streams (open as long as a
    # tool keeps them): never on the chatbot's handler thread
    side = futures.ThreadPoolExecutor(4, thread_name_prefix="recsvc-side")
    server = grpc.server(executor, maximum_concurrent_rpcs=config.max_concurrent_rpcs,
                         options=[("grpc.so_reuseport", 1 if config.workers > 1 else 0)])
    calls = ServiceInterceptor(stats)
    recommender = recommender_servicer(runtime, calls, metrics)
    _add_service(server, _on_pool(recommender, ["ReportEvents"], side), RECOMMENDER)
    admin = calls.instrument(AdminService(runtime, stats, metrics), ADMIN)
    pb_grpc.add_AdminServicer_to_server(_on_pool(admin, [m.name for m in _methods(ADMIN)], side), server)
    checker = health.HealthServicer(experimental_non_blocking=True,
                                    experimental_thread_pool=futures.ThreadPoolExecutor(1))
    health_pb2_grpc.add_HealthServicer_to_server(checker, server)
    for name in ("", RECOMMENDER, MODEL_HEALTH):
        checker.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    checker.set(ADMIN, health_pb2.HealthCheckResponse.SERVING)
    runtime.on_swap(lambda _live: [checker.set(n, health_pb2.HealthCheckResponse.SERVING) for n in ("", RECOMMENDER)])
    runtime.on_swap(lambda live: metrics.model_swapped(live.model.version, _created(live.model.manifest)))
    runtime.on_reload_status(lambda why: (metrics.reload_status(why), checker.set(
        MODEL_HEALTH, health_pb2.HealthCheckResponse.NOT_SERVING if why else health_pb2.HealthCheckResponse.SERVING)))
    reflector = reflection.ReflectionServicer(SERVICES + (health.SERVICE_NAME, reflection.SERVICE_NAME))
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(
        _on_pool(types.SimpleNamespace(ServerReflectionInfo=reflector.ServerReflectionInfo), ["ServerReflectionInfo"],
                 side), server)
    port = server.add_insecure_port(f"{config.host}:{config.port}")
    if not port:
        raise OSError(f"cannot listen on {config.host}:{config.port}")
    metrics_port = metrics.serve(config.host, config.metrics_port) if config.metrics_port else 0
    server.start()
    runtime.start()
    return RunningServer(server, port, runtime, checker, stats, metrics, metrics_port)


def recommender_servicer(runtime: Runtime, calls: ServiceInterceptor, metrics: Metrics):
    """The Recommender as the server registers it: every method inside `calls`, and the
    four chatbot methods answered by recsvc.fast.CompiledRPC first (the model's kernel,
    when it has one), then by that Python path; only the latter where the compiled
    modules are not built."""
    recommender = calls.instrument(RecommenderService(runtime, metrics.observe_answer), RECOMMENDER)
    if CompiledRPC is not None:
        for name in ("GetComplements", "GetSubstitutes", "GetBundle", "Recommend"):
            rpc = CompiledRPC(RECOMMENDER, name, runtime, getattr(recommender, name), metrics.observe_answer,
                              calls.request_ids, *calls.stats.edges)
            calls.stats.add_source(rpc)
            metrics.add_answer_source(rpc)
            setattr(recommender, name, rpc)
    return recommender


def _methods(service: str):
    """The method descriptors of `service` (a full name, "recsvc.v1.Admin")."""
    return pb.DESCRIPTOR.services_by_name[service.rpartition(".")[2]].methods


def _on_pool(servicer, names: list[str], pool: futures.ThreadPoolExecutor):
    """`servicer` with the methods `names` run on `pool` instead of the server's
    handler threads (grpc reads a behaviour's `experimental_thread_pool`)."""
    for name in names:
        behavior = functools.partial(getattr(servicer, name))
        behavior.experimental_thread_pool = pool
        setattr(servicer, name, behavior)
    return servicer


def _add_service(server: grpc.Server, servicer, service: str) -> None:
    """As the generated add_*Servicer_to_server, except that a handler may also return
    the response already serialised (bytes, from the compiled kernel)."""
    handlers = {}
    for m in _methods(service):
        if m.client_streaming or m.server_streaming:
            raise ValueError(f"{service}/{m.name} streams; _add_service registers unary methods only")
        request, response = getattr(pb, m.input_type.name), getattr(pb, m.output_type.name)
        handlers[m.name] = grpc.unary_unary_rpc_method_handler(
            getattr(servicer, m.name), request_deserializer=request.FromString,
            response_serializer=_serializer(response))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, handlers),))
    server.add_registered_method_handlers(service, handlers)


def _serializer(message_class) -> Callable[[object], bytes]:
    serialize = message_class.SerializeToString

    def to_bytes(response) -> bytes:
        return response if response.__class__ is bytes else serialize(response)
    return to_bytes


def _created(manifest: dict) -> float | None:
    """The bundle's training time (manifest `created`, ISO 8601) in epoch seconds."""
    try:
        return datetime.fromisoformat(str(manifest.get("created", ""))).timestamp()
    except ValueError:
        return None


def serve(config: Config) -> int:
    """Run until SIGTERM/SIGINT; several worker processes when config.workers > 1."""
    configure_logging(config.log_level, config.log_format)
    for warning in env_typos():
        log.warning("%s", warning)
    if config.workers > 1:
        return _supervise(config)
    return _serve_one(config)


def _wait_for_signal(supervisor: int | None) -> None:
    """Until SIGTERM/SIGINT, or until the supervisor is gone (a worker must not outlive it)."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(0.5):
        if supervisor is not None and os.getppid() != supervisor:
            log.error("supervisor %d is gone; stopping", supervisor)
            return


def _serve_one(config: Config, supervisor: int | None = None) -> int:
    running = build_server(config)
    log.info("recsvc listening on %s:%d (model dir %s, state %s, metrics %s)", config.host, running.port,
             config.model_dir, running.runtime.store.url,
             f"on port {running.metrics_port}" if running.metrics_port else "off")
    _wait_for_signal(supervisor)
    log.info("shutting down: finishing in-flight requests (up to %.0f s)", config.grace_s)
    running.stop()
    return 0


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET) as s:
        s.bind((host.strip("[]"), 0))
        return s.getsockname()[1]


def _supervise(config: Config) -> int:
    """Fork `workers` servers sharing one port (SO_REUSEPORT) before any gRPC object
    exists in this process, each on a CPU of its own (`pin_workers`); restart one that
    dies; pass SIGTERM on and wait."""
    if config.port == 0:
        config = config.replace(port=_free_port(config.host))
    children: dict[int, int] = {}
    stopping = threading.Event()
    me = os.getpid()

    def spawn(worker: int) -> None:
        pid = os.fork()
        if pid == 0:
            code = 1
            try:  # each worker serves its own /metrics: metrics_port + worker (recsvc.metrics)
                if config.pin_workers:
                    pin_to_cpu(worker)
                own = config.replace(metrics_port=config.metrics_port + worker) if config.metrics_port else config
                code = _serve_one(own, supervisor=me)
            finally:
                os._exit(code)
        children[pid] = worker

    def on_signal(*_):
        stopping.set()
        for pid in list(children):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    for i in range(config.workers):
        spawn(i)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log.info("supervising %d workers on port %d%s", config.workers, config.port,
             " (each on a CPU of its own)" if config.pin_workers else "")
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        worker = children.pop(pid, None)
        if worker is not None and not stopping.is_set():
            log.error("worker %d (pid %d) exited with status %d; restarting it", worker, pid, status)
            time.sleep(0.5)
            spawn(worker)
    return 0

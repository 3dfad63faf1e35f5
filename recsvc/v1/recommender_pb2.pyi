import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Reason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REASON_UNSPECIFIED: _ClassVar[Reason]
    REASON_CO_PURCHASE: _ClassVar[Reason]
    REASON_SIMILAR: _ClassVar[Reason]
    REASON_CATEGORY_FALLBACK: _ClassVar[Reason]
    REASON_PERSONAL: _ClassVar[Reason]
    REASON_POPULAR: _ClassVar[Reason]
    REASON_TEST_SLOT: _ClassVar[Reason]

class EventType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EVENT_TYPE_UNSPECIFIED: _ClassVar[EventType]
    EVENT_TYPE_IMPRESSION: _ClassVar[EventType]
    EVENT_TYPE_CLICK: _ClassVar[EventType]
    EVENT_TYPE_ADD_TO_CART: _ClassVar[EventType]
    EVENT_TYPE_PURCHASE: _ClassVar[EventType]
REASON_UNSPECIFIED: Reason
REASON_CO_PURCHASE: Reason
REASON_SIMILAR: Reason
REASON_CATEGORY_FALLBACK: Reason
REASON_PERSONAL: Reason
REASON_POPULAR: Reason
REASON_TEST_SLOT: Reason
EVENT_TYPE_UNSPECIFIED: EventType
EVENT_TYPE_IMPRESSION: EventType
EVENT_TYPE_CLICK: EventType
EVENT_TYPE_ADD_TO_CART: EventType
EVENT_TYPE_PURCHASE: EventType

class Context(_message.Message):
    __slots__ = ("shop_id", "user_id", "session_id", "cart_item_ids", "shown_item_ids")
    SHOP_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    CART_ITEM_IDS_FIELD_NUMBER: _ClassVar[int]
    SHOWN_ITEM_IDS_FIELD_NUMBER: _ClassVar[int]
    shop_id: str
    user_id: str
    session_id: str
    cart_item_ids: _containers.RepeatedScalarFieldContainer[str]
    shown_item_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, shop_id: _Optional[str] = ..., user_id: _Optional[str] = ..., session_id: _Optional[str] = ..., cart_item_ids: _Optional[_Iterable[str]] = ..., shown_item_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class Filter(_message.Message):
    __slots__ = ("include_out_of_stock", "exclude_item_ids", "categories", "min_price", "max_price", "attributes")
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    INCLUDE_OUT_OF_STOCK_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_ITEM_IDS_FIELD_NUMBER: _ClassVar[int]
    CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    MIN_PRICE_FIELD_NUMBER: _ClassVar[int]
    MAX_PRICE_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    include_out_of_stock: bool
    exclude_item_ids: _containers.RepeatedScalarFieldContainer[str]
    categories: _containers.RepeatedScalarFieldContainer[str]
    min_price: float
    max_price: float
    attributes: _containers.ScalarMap[str, str]
    def __init__(self, include_out_of_stock: _Optional[bool] = ..., exclude_item_ids: _Optional[_Iterable[str]] = ..., categories: _Optional[_Iterable[str]] = ..., min_price: _Optional[float] = ..., max_price: _Optional[float] = ..., attributes: _Optional[_Mapping[str, str]] = ...) -> None: ...

class Item(_message.Message):
    __slots__ = ("item_id", "score", "reason", "explanation", "title", "category", "price", "in_stock", "variant_id", "exposure_id")
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    IN_STOCK_FIELD_NUMBER: _ClassVar[int]
    VARIANT_ID_FIELD_NUMBER: _ClassVar[int]
    EXPOSURE_ID_FIELD_NUMBER: _ClassVar[int]
    item_id: str
    score: float
    reason: Reason
    explanation: str
    title: str
    category: str
    price: float
    in_stock: bool
    variant_id: str
    exposure_id: str
    def __init__(self, item_id: _Optional[str] = ..., score: _Optional[float] = ..., reason: _Optional[_Union[Reason, str]] = ..., explanation: _Optional[str] = ..., title: _Optional[str] = ..., category: _Optional[str] = ..., price: _Optional[float] = ..., in_stock: _Optional[bool] = ..., variant_id: _Optional[str] = ..., exposure_id: _Optional[str] = ...) -> None: ...

class ItemsResponse(_message.Message):
    __slots__ = ("items", "model_version", "request_id")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[Item]
    model_version: str
    request_id: str
    def __init__(self, items: _Optional[_Iterable[_Union[Item, _Mapping]]] = ..., model_version: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class ComplementsRequest(_message.Message):
    __slots__ = ("item_ids", "limit", "context", "filter")
    ITEM_IDS_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    item_ids: _containers.RepeatedScalarFieldContainer[str]
    limit: int
    context: Context
    filter: Filter
    def __init__(self, item_ids: _Optional[_Iterable[str]] = ..., limit: _Optional[int] = ..., context: _Optional[_Union[Context, _Mapping]] = ..., filter: _Optional[_Union[Filter, _Mapping]] = ...) -> None: ...

class SubstitutesRequest(_message.Message):
    __slots__ = ("item_id", "limit", "context", "filter")
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    item_id: str
    limit: int
    context: Context
    filter: Filter
    def __init__(self, item_id: _Optional[str] = ..., limit: _Optional[int] = ..., context: _Optional[_Union[Context, _Mapping]] = ..., filter: _Optional[_Union[Filter, _Mapping]] = ...) -> None: ...

class BundleRequest(_message.Message):
    __slots__ = ("item_id", "max_items", "context", "filter")
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    MAX_ITEMS_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    item_id: str
    max_items: int
    context: Context
    filter: Filter
    def __init__(self, item_id: _Optional[str] = ..., max_items: _Optional[int] = ..., context: _Optional[_Union[Context, _Mapping]] = ..., filter: _Optional[_Union[Filter, _Mapping]] = ...) -> None: ...

class BundleResponse(_message.Message):
    __slots__ = ("anchor", "items", "list_price", "bundle_price", "saving", "promotion", "valid_until", "explanation", "model_version", "request_id")
    ANCHOR_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    LIST_PRICE_FIELD_NUMBER: _ClassVar[int]
    BUNDLE_PRICE_FIELD_NUMBER: _ClassVar[int]
    SAVING_FIELD_NUMBER: _ClassVar[int]
    PROMOTION_FIELD_NUMBER: _ClassVar[int]
    VALID_UNTIL_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    anchor: Item
    items: _containers.RepeatedCompositeFieldContainer[Item]
    list_price: float
    bundle_price: float
    saving: float
    promotion: Promotion
    valid_until: _timestamp_pb2.Timestamp
    explanation: str
    model_version: str
    request_id: str
    def __init__(self, anchor: _Optional[_Union[Item, _Mapping]] = ..., items: _Optional[_Iterable[_Union[Item, _Mapping]]] = ..., list_price: _Optional[float] = ..., bundle_price: _Optional[float] = ..., saving: _Optional[float] = ..., promotion: _Optional[_Union[Promotion, _Mapping]] = ..., valid_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., explanation: _Optional[str] = ..., model_version: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class RecommendRequest(_message.Message):
    __slots__ = ("limit", "context", "filter")
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    limit: int
    context: Context
    filter: Filter
    def __init__(self, limit: _Optional[int] = ..., context: _Optional[_Union[Context, _Mapping]] = ..., filter: _Optional[_Union[Filter, _Mapping]] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("event_id", "type", "exposure_id", "user_id", "session_id", "item_id", "time")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    EXPOSURE_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    type: EventType
    exposure_id: str
    user_id: str
    session_id: str
    item_id: str
    time: _timestamp_pb2.Timestamp
    def __init__(self, event_id: _Optional[str] = ..., type: _Optional[_Union[EventType, str]] = ..., exposure_id: _Optional[str] = ..., user_id: _Optional[str] = ..., session_id: _Optional[str] = ..., item_id: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ReportEventsRequest(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[Event]
    def __init__(self, events: _Optional[_Iterable[_Union[Event, _Mapping]]] = ...) -> None: ...

class RejectedEvent(_message.Message):
    __slots__ = ("event_id", "reason")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    reason: str
    def __init__(self, event_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ReportEventsResponse(_message.Message):
    __slots__ = ("accepted", "duplicates", "rejected")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    accepted: int
    duplicates: int
    rejected: _containers.RepeatedCompositeFieldContainer[RejectedEvent]
    def __init__(self, accepted: _Optional[int] = ..., duplicates: _Optional[int] = ..., rejected: _Optional[_Iterable[_Union[RejectedEvent, _Mapping]]] = ...) -> None: ...

class StockLevel(_message.Message):
    __slots__ = ("item_id", "quantity")
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    item_id: str
    quantity: int
    def __init__(self, item_id: _Optional[str] = ..., quantity: _Optional[int] = ...) -> None: ...

class UpdateStockRequest(_message.Message):
    __slots__ = ("levels",)
    LEVELS_FIELD_NUMBER: _ClassVar[int]
    levels: _containers.RepeatedCompositeFieldContainer[StockLevel]
    def __init__(self, levels: _Optional[_Iterable[_Union[StockLevel, _Mapping]]] = ...) -> None: ...

class UpdateStockResponse(_message.Message):
    __slots__ = ("applied", "seq")
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    applied: int
    seq: int
    def __init__(self, applied: _Optional[int] = ..., seq: _Optional[int] = ...) -> None: ...

class GetStockRequest(_message.Message):
    __slots__ = ("item_ids",)
    ITEM_IDS_FIELD_NUMBER: _ClassVar[int]
    item_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, item_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class StockState(_message.Message):
    __slots__ = ("item_id", "in_stock")
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    IN_STOCK_FIELD_NUMBER: _ClassVar[int]
    item_id: str
    in_stock: bool
    def __init__(self, item_id: _Optional[str] = ..., in_stock: _Optional[bool] = ...) -> None: ...

class GetStockResponse(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[StockState]
    def __init__(self, items: _Optional[_Iterable[_Union[StockState, _Mapping]]] = ...) -> None: ...

class PriceLevel(_message.Message):
    __slots__ = ("item_id", "price")
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    item_id: str
    price: float
    def __init__(self, item_id: _Optional[str] = ..., price: _Optional[float] = ...) -> None: ...

class UpdatePricesRequest(_message.Message):
    __slots__ = ("prices",)
    PRICES_FIELD_NUMBER: _ClassVar[int]
    prices: _containers.RepeatedCompositeFieldContainer[PriceLevel]
    def __init__(self, prices: _Optional[_Iterable[_Union[PriceLevel, _Mapping]]] = ...) -> None: ...

class UpdatePricesResponse(_message.Message):
    __slots__ = ("applied",)
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    applied: int
    def __init__(self, applied: _Optional[int] = ...) -> None: ...

class Promotion(_message.Message):
    __slots__ = ("id", "name", "item_ids", "categories", "kind", "value", "cap", "starts_at", "ends_at", "priority", "min_items")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        KIND_UNSPECIFIED: _ClassVar[Promotion.Kind]
        KIND_PERCENT: _ClassVar[Promotion.Kind]
        KIND_AMOUNT: _ClassVar[Promotion.Kind]
    KIND_UNSPECIFIED: Promotion.Kind
    KIND_PERCENT: Promotion.Kind
    KIND_AMOUNT: Promotion.Kind
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ITEM_IDS_FIELD_NUMBER: _ClassVar[int]
    CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    CAP_FIELD_NUMBER: _ClassVar[int]
    STARTS_AT_FIELD_NUMBER: _ClassVar[int]
    ENDS_AT_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    MIN_ITEMS_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    item_ids: _containers.RepeatedScalarFieldContainer[str]
    categories: _containers.RepeatedScalarFieldContainer[str]
    kind: Promotion.Kind
    value: float
    cap: float
    starts_at: _timestamp_pb2.Timestamp
    ends_at: _timestamp_pb2.Timestamp
    priority: int
    min_items: int
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., item_ids: _Optional[_Iterable[str]] = ..., categories: _Optional[_Iterable[str]] = ..., kind: _Optional[_Union[Promotion.Kind, str]] = ..., value: _Optional[float] = ..., cap: _Optional[float] = ..., starts_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ends_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., priority: _Optional[int] = ..., min_items: _Optional[int] = ...) -> None: ...

class CreatePromotionRequest(_message.Message):
    __slots__ = ("promotion",)
    PROMOTION_FIELD_NUMBER: _ClassVar[int]
    promotion: Promotion
    def __init__(self, promotion: _Optional[_Union[Promotion, _Mapping]] = ...) -> None: ...

class ListPromotionsRequest(_message.Message):
    __slots__ = ("active_only", "at")
    ACTIVE_ONLY_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    active_only: bool
    at: _timestamp_pb2.Timestamp
    def __init__(self, active_only: _Optional[bool] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListPromotionsResponse(_message.Message):
    __slots__ = ("promotions",)
    PROMOTIONS_FIELD_NUMBER: _ClassVar[int]
    promotions: _containers.RepeatedCompositeFieldContainer[Promotion]
    def __init__(self, promotions: _Optional[_Iterable[_Union[Promotion, _Mapping]]] = ...) -> None: ...

class DeletePromotionRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class DeletePromotionResponse(_message.Message):
    __slots__ = ("deleted",)
    DELETED_FIELD_NUMBER: _ClassVar[int]
    deleted: bool
    def __init__(self, deleted: _Optional[bool] = ...) -> None: ...

class GetModelInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ("version", "path", "created", "format_version", "products", "variants", "categories", "users", "loaded_at", "load_seconds", "current_version", "versions", "last_reload_error")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    FORMAT_VERSION_FIELD_NUMBER: _ClassVar[int]
    PRODUCTS_FIELD_NUMBER: _ClassVar[int]
    VARIANTS_FIELD_NUMBER: _ClassVar[int]
    CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    USERS_FIELD_NUMBER: _ClassVar[int]
    LOADED_AT_FIELD_NUMBER: _ClassVar[int]
    LOAD_SECONDS_FIELD_NUMBER: _ClassVar[int]
    CURRENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    LAST_RELOAD_ERROR_FIELD_NUMBER: _ClassVar[int]
    version: str
    path: str
    created: str
    format_version: int
    products: int
    variants: int
    categories: int
    users: int
    loaded_at: _timestamp_pb2.Timestamp
    load_seconds: float
    current_version: str
    versions: _containers.RepeatedScalarFieldContainer[str]
    last_reload_error: str
    def __init__(self, version: _Optional[str] = ..., path: _Optional[str] = ..., created: _Optional[str] = ..., format_version: _Optional[int] = ..., products: _Optional[int] = ..., variants: _Optional[int] = ..., categories: _Optional[int] = ..., users: _Optional[int] = ..., loaded_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., load_seconds: _Optional[float] = ..., current_version: _Optional[str] = ..., versions: _Optional[_Iterable[str]] = ..., last_reload_error: _Optional[str] = ...) -> None: ...

class ReloadRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ReloadResponse(_message.Message):
    __slots__ = ("changed", "model_version", "previous_version", "message")
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_VERSION_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    changed: bool
    model_version: str
    previous_version: str
    message: str
    def __init__(self, changed: _Optional[bool] = ..., model_version: _Optional[str] = ..., previous_version: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class GetServerStatsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class MethodStats(_message.Message):
    __slots__ = ("method", "count", "errors", "handler_p50_ms", "handler_p99_ms", "handler_max_ms", "handler_cpu_p50_ms", "handler_cpu_p99_ms")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    HANDLER_P50_MS_FIELD_NUMBER: _ClassVar[int]
    HANDLER_P99_MS_FIELD_NUMBER: _ClassVar[int]
    HANDLER_MAX_MS_FIELD_NUMBER: _ClassVar[int]
    HANDLER_CPU_P50_MS_FIELD_NUMBER: _ClassVar[int]
    HANDLER_CPU_P99_MS_FIELD_NUMBER: _ClassVar[int]
    method: str
    count: int
    errors: int
    handler_p50_ms: float
    handler_p99_ms: float
    handler_max_ms: float
    handler_cpu_p50_ms: float
    handler_cpu_p99_ms: float
    def __init__(self, method: _Optional[str] = ..., count: _Optional[int] = ..., errors: _Optional[int] = ..., handler_p50_ms: _Optional[float] = ..., handler_p99_ms: _Optional[float] = ..., handler_max_ms: _Optional[float] = ..., handler_cpu_p50_ms: _Optional[float] = ..., handler_cpu_p99_ms: _Optional[float] = ...) -> None: ...

class ServerStats(_message.Message):
    __slots__ = ("pid", "uptime_s", "model_version", "in_flight", "methods", "swaps")
    PID_FIELD_NUMBER: _ClassVar[int]
    UPTIME_S_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    METHODS_FIELD_NUMBER: _ClassVar[int]
    SWAPS_FIELD_NUMBER: _ClassVar[int]
    pid: int
    uptime_s: float
    model_version: str
    in_flight: int
    methods: _containers.RepeatedCompositeFieldContainer[MethodStats]
    swaps: int
    def __init__(self, pid: _Optional[int] = ..., uptime_s: _Optional[float] = ..., model_version: _Optional[str] = ..., in_flight: _Optional[int] = ..., methods: _Optional[_Iterable[_Union[MethodStats, _Mapping]]] = ..., swaps: _Optional[int] = ...) -> None: ...

class Experiment(_message.Message):
    __slots__ = ("id", "name", "item_ids", "rpcs", "slot", "share_pct", "starts_at", "ends_at", "control_pct", "allocation", "floor_pct", "top_n", "metric", "targeting", "status", "salt")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ITEM_IDS_FIELD_NUMBER: _ClassVar[int]
    RPCS_FIELD_NUMBER: _ClassVar[int]
    SLOT_FIELD_NUMBER: _ClassVar[int]
    SHARE_PCT_FIELD_NUMBER: _ClassVar[int]
    STARTS_AT_FIELD_NUMBER: _ClassVar[int]
    ENDS_AT_FIELD_NUMBER: _ClassVar[int]
    CONTROL_PCT_FIELD_NUMBER: _ClassVar[int]
    ALLOCATION_FIELD_NUMBER: _ClassVar[int]
    FLOOR_PCT_FIELD_NUMBER: _ClassVar[int]
    TOP_N_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    TARGETING_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    SALT_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    item_ids: _containers.RepeatedScalarFieldContainer[str]
    rpcs: _containers.RepeatedScalarFieldContainer[str]
    slot: int
    share_pct: float
    starts_at: _timestamp_pb2.Timestamp
    ends_at: _timestamp_pb2.Timestamp
    control_pct: float
    allocation: str
    floor_pct: float
    top_n: int
    metric: str
    targeting: bool
    status: str
    salt: str
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., item_ids: _Optional[_Iterable[str]] = ..., rpcs: _Optional[_Iterable[str]] = ..., slot: _Optional[int] = ..., share_pct: _Optional[float] = ..., starts_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ends_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., control_pct: _Optional[float] = ..., allocation: _Optional[str] = ..., floor_pct: _Optional[float] = ..., top_n: _Optional[int] = ..., metric: _Optional[str] = ..., targeting: _Optional[bool] = ..., status: _Optional[str] = ..., salt: _Optional[str] = ...) -> None: ...

class CreateExperimentRequest(_message.Message):
    __slots__ = ("experiment", "definition")
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    DEFINITION_FIELD_NUMBER: _ClassVar[int]
    experiment: Experiment
    definition: str
    def __init__(self, experiment: _Optional[_Union[Experiment, _Mapping]] = ..., definition: _Optional[str] = ...) -> None: ...

class ListExperimentsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListExperimentsResponse(_message.Message):
    __slots__ = ("experiments",)
    EXPERIMENTS_FIELD_NUMBER: _ClassVar[int]
    experiments: _containers.RepeatedCompositeFieldContainer[Experiment]
    def __init__(self, experiments: _Optional[_Iterable[_Union[Experiment, _Mapping]]] = ...) -> None: ...

class GetExperimentRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class SetExperimentStatusRequest(_message.Message):
    __slots__ = ("id", "status")
    ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    id: str
    status: str
    def __init__(self, id: _Optional[str] = ..., status: _Optional[str] = ...) -> None: ...

class ExperimentReportRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ReportRow(_message.Message):
    __slots__ = ("item_id", "arm", "exposures", "impressions", "clicks", "add_to_carts", "purchases", "rate", "ci_low", "ci_high", "p_top_n", "in_top_n")
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    ARM_FIELD_NUMBER: _ClassVar[int]
    EXPOSURES_FIELD_NUMBER: _ClassVar[int]
    IMPRESSIONS_FIELD_NUMBER: _ClassVar[int]
    CLICKS_FIELD_NUMBER: _ClassVar[int]
    ADD_TO_CARTS_FIELD_NUMBER: _ClassVar[int]
    PURCHASES_FIELD_NUMBER: _ClassVar[int]
    RATE_FIELD_NUMBER: _ClassVar[int]
    CI_LOW_FIELD_NUMBER: _ClassVar[int]
    CI_HIGH_FIELD_NUMBER: _ClassVar[int]
    P_TOP_N_FIELD_NUMBER: _ClassVar[int]
    IN_TOP_N_FIELD_NUMBER: _ClassVar[int]
    item_id: str
    arm: str
    exposures: int
    impressions: int
    clicks: int
    add_to_carts: int
    purchases: int
    rate: float
    ci_low: float
    ci_high: float
    p_top_n: float
    in_top_n: bool
    def __init__(self, item_id: _Optional[str] = ..., arm: _Optional[str] = ..., exposures: _Optional[int] = ..., impressions: _Optional[int] = ..., clicks: _Optional[int] = ..., add_to_carts: _Optional[int] = ..., purchases: _Optional[int] = ..., rate: _Optional[float] = ..., ci_low: _Optional[float] = ..., ci_high: _Optional[float] = ..., p_top_n: _Optional[float] = ..., in_top_n: _Optional[bool] = ...) -> None: ...

class SlotEffect(_message.Message):
    __slots__ = ("test_exposures", "test_conversions", "control_exposures", "control_conversions", "test_rate", "control_rate", "difference", "ci_low", "ci_high", "p_test_better")
    TEST_EXPOSURES_FIELD_NUMBER: _ClassVar[int]
    TEST_CONVERSIONS_FIELD_NUMBER: _ClassVar[int]
    CONTROL_EXPOSURES_FIELD_NUMBER: _ClassVar[int]
    CONTROL_CONVERSIONS_FIELD_NUMBER: _ClassVar[int]
    TEST_RATE_FIELD_NUMBER: _ClassVar[int]
    CONTROL_RATE_FIELD_NUMBER: _ClassVar[int]
    DIFFERENCE_FIELD_NUMBER: _ClassVar[int]
    CI_LOW_FIELD_NUMBER: _ClassVar[int]
    CI_HIGH_FIELD_NUMBER: _ClassVar[int]
    P_TEST_BETTER_FIELD_NUMBER: _ClassVar[int]
    test_exposures: int
    test_conversions: int
    control_exposures: int
    control_conversions: int
    test_rate: float
    control_rate: float
    difference: float
    ci_low: float
    ci_high: float
    p_test_better: float
    def __init__(self, test_exposures: _Optional[int] = ..., test_conversions: _Optional[int] = ..., control_exposures: _Optional[int] = ..., control_conversions: _Optional[int] = ..., test_rate: _Optional[float] = ..., control_rate: _Optional[float] = ..., difference: _Optional[float] = ..., ci_low: _Optional[float] = ..., ci_high: _Optional[float] = ..., p_test_better: _Optional[float] = ...) -> None: ...

class StoppingAdvice(_message.Message):
    __slots__ = ("confidence", "p_settled", "settled", "more_exposures")
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    P_SETTLED_FIELD_NUMBER: _ClassVar[int]
    SETTLED_FIELD_NUMBER: _ClassVar[int]
    MORE_EXPOSURES_FIELD_NUMBER: _ClassVar[int]
    confidence: float
    p_settled: float
    settled: bool
    more_exposures: int
    def __init__(self, confidence: _Optional[float] = ..., p_settled: _Optional[float] = ..., settled: _Optional[bool] = ..., more_exposures: _Optional[int] = ...) -> None: ...

class ExperimentReportResponse(_message.Message):
    __slots__ = ("experiment", "items", "control", "effect", "stopping", "generated_at", "rejected_events", "text")
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    CONTROL_FIELD_NUMBER: _ClassVar[int]
    EFFECT_FIELD_NUMBER: _ClassVar[int]
    STOPPING_FIELD_NUMBER: _ClassVar[int]
    GENERATED_AT_FIELD_NUMBER: _ClassVar[int]
    REJECTED_EVENTS_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    experiment: Experiment
    items: _containers.RepeatedCompositeFieldContainer[ReportRow]
    control: ReportRow
    effect: SlotEffect
    stopping: StoppingAdvice
    generated_at: _timestamp_pb2.Timestamp
    rejected_events: int
    text: str
    def __init__(self, experiment: _Optional[_Union[Experiment, _Mapping]] = ..., items: _Optional[_Iterable[_Union[ReportRow, _Mapping]]] = ..., control: _Optional[_Union[ReportRow, _Mapping]] = ..., effect: _Optional[_Union[SlotEffect, _Mapping]] = ..., stopping: _Optional[_Union[StoppingAdvice, _Mapping]] = ..., generated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., rejected_events: _Optional[int] = ..., text: _Optional[str] = ...) -> None: ...

class ExportExperimentRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ExportExperimentResponse(_message.Message):
    __slots__ = ("csv",)
    CSV_FIELD_NUMBER: _ClassVar[int]
    csv: str
    def __init__(self, csv: _Optional[str] = ...) -> None: ...

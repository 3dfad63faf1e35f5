# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled answers for the chatbot's common requests: request message in, response bytes out.

grpc's Python server costs ~150-300 us of CPU per call by itself; answering in Python
added as much again (building records, then a message, item by item). For the common
request shapes this module does the same work in C over the model's arrays and writes
the protobuf wire format directly, from UTF-8 encoded once per model load.

The Python answer code (`recsvc.answers`) stays the one definition of what an answer
is: every method here returns None for anything it does not handle exactly like it
(an unknown id or a bad field, whose error message Python words; NaN scores, whose
order numpy decides; a bundle price Decimal would round), and the caller then runs
the Python path. Where only Python's own function can decide (pricing under a
promotion a bundle whose prices are not whole cents, in Decimal), the kernel calls it. tests/recsvc/test_fast.py compares
both, byte for byte, over many requests.

The GIL is held while a call runs C code. What a request reads is its own (`_Request`,
with its stock and price snapshot); what calls share are caches that are only ever
replaced whole (the last snapshot, each promotion as codes and as bytes), so two handler
threads may call one Kernel.
"""
from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc, qsort
from libc.string cimport memcpy
from libc.stdio cimport snprintf
from libc.math cimport fabs, nearbyint
from cpython.bytes cimport PyBytes_FromStringAndSize

from recsvc.pacing import pause
from decimal import Decimal

import numpy as np

_CHUNK = 5_000  # strings encoded between GIL hand-overs while a model loads (~1 ms each)
_ID_CHUNK = 20_000  # ids put in a hash table between hand-overs (~1 ms)

cdef extern from "Python.h":
    const char* PyUnicode_AsUTF8AndSize(object, Py_ssize_t*) except NULL

cdef extern from *:
    void __builtin_prefetch(const void* addr) nogil

DEF MAX_LIMIT = 100
DEF AHEAD = 12  # candidates whose fields are fetched ahead of the scan that tests them
DEF SCAN_CAP = 4096  # as recsvc.answers.common.SCAN_CAP
DEF MAX_ATTRS = 8
DEF MAX_KEY = 256  # ids longer than this go the Python way
DEF MAX_OWN = 12  # anchors' categories a complements request may span here (more: Python)
DEF FILL_ROW = 8  # as recsvc.answers.complements._FALLBACK_PER_CATEGORY

cdef enum:
    REASON_CO_PURCHASE = 1
    REASON_CATEGORY_FALLBACK = 3
    REASON_SIMILAR = 2
    REASON_POPULAR = 5


# --- id lookup: the same answer as recsvc.idindex.IdIndex.get --------------------------

cdef class IdSearch:
    """IdIndex's sorted fixed-width UCS-4 array (no copy), looked up through an open
    addressing hash table of its positions built once per model: a lookup reads ~3 cache
    lines where a binary search over 300k ids read ~19, each a miss between grpc's work."""
    cdef const uint32_t[:, ::1] rows
    cdef const int64_t[::1] order
    cdef const int32_t[::1] slots  # positions in rows, -1 empty; a power of two long
    cdef uint64_t mask
    cdef Py_ssize_t n, width

    def __init__(self, index, bint use_given=True):
        """The table comes with `index` (`hash_slots`, a model image's: made by the
        child process that wrote it) or is built here, in slices."""
        s = np.ascontiguousarray(index._sorted)
        self.width = s.dtype.itemsize // 4
        self.n = len(s) if self.width > 0 else 0
        if self.n == 0:
            self.rows = np.zeros((1, 1), np.uint32)
        else:
            self.rows = s.view(np.uint32).reshape(len(s), self.width)
        self.order = np.ascontiguousarray(index._order, dtype=np.int64)
        cdef Py_ssize_t size = _table_size(self.n), i, lo
        self.mask = size - 1
        given = getattr(index, "hash_slots", None) if use_given else None
        if given is not None and given.dtype == np.int32 and given.shape == (size,):  # else: build one
            if given.min() < -1 or given.max() >= self.n:  # model_image checked; a lookup must never read past rows
                raise ValueError(f"the hash table of {self.n} ids is damaged")
            self.slots = given  # read only: find() never writes
            return
        cdef int32_t[::1] table = np.full(size, -1, np.int32)
        for lo in range(0, self.n, _ID_CHUNK):
            for i in range(lo, min(lo + _ID_CHUNK, self.n)):
                self._insert(&table[0], i)
            pause()
        self.slots = table

    def table(self):
        """The hash table, for a model image to carry."""
        return np.asarray(self.slots)

    cdef void _insert(self, int32_t* table, Py_ssize_t i) noexcept:
        """Slot for position i, unless an equal id holds one (the first of equal ids wins,
        as np.searchsorted's lower bound did)."""
        cdef const uint32_t* row = &self.rows[i, 0]
        cdef uint64_t h = _hash(row, self.width) & self.mask
        while table[h] >= 0:
            if _cmp(&self.rows[table[h], 0], row, self.width) == 0:
                return
            h = (h + 1) & self.mask
        table[h] = <int32_t>i

    def position(self, str key):
        """find() for Python (tests): the position, -1 unknown, -2 undecided."""
        return self.find(key)

    cdef int64_t find(self, object key) except -3:
        """Position of `key`, -1 if unknown, -2 if only Python can tell (NUL, very long)."""
        cdef Py_ssize_t m = len(key), w = self.width, j = 0
        cdef uint32_t buf[MAX_KEY]
        cdef Py_UCS4 ch
        cdef uint64_t h
        cdef int32_t at
        if m > w:
            return -1
        if w > MAX_KEY:
            return -2
        for ch in <str>key:
            if ch == 0:
                return -2
            buf[j] = ch
            j += 1
        for j in range(m, w):
            buf[j] = 0
        h = _hash(buf, w) & self.mask
        while True:
            at = self.slots[h]
            if at < 0:
                return -1
            if _cmp(&self.rows[at, 0], buf, w) == 0:
                return self.order[at]
            h = (h + 1) & self.mask


cdef Py_ssize_t _table_size(Py_ssize_t n) noexcept:
    cdef Py_ssize_t size = 16
    while size < 2 * n:  # at most half full: short probe runs
        size <<= 1
    return size


def id_slots(index):
    """IdSearch's hash table for `index` (an IdIndex), as an int32 array: built by the
    process that writes a model image, so a worker that maps it builds none."""
    return IdSearch(index, use_given=False).table()


cdef inline uint64_t _hash(const uint32_t* a, Py_ssize_t w) noexcept:
    """FNV-1a over the code points, padding included, then a final mix: the low bits,
    which pick the slot, depend on every character."""
    cdef uint64_t h = 14695981039346656037ULL
    cdef Py_ssize_t i
    for i in range(w):
        h = (h ^ a[i]) * 1099511628211ULL
    h ^= h >> 29
    h *= 0xbf58476d1ce4e5b9ULL
    return h ^ (h >> 32)


cdef inline int _cmp(const uint32_t* a, const uint32_t* b, Py_ssize_t w) noexcept:
    cdef Py_ssize_t i
    for i in range(w):
        if a[i] != b[i]:
            return -1 if a[i] < b[i] else 1
    return 0


# --- UTF-8 strings, encoded once per model -----------------------------------------------

cdef class Strings:
    """n strings as UTF-8, back to back: string i is data[offsets[i]:offsets[i + 1]]."""
    cdef bytes data
    cdef const char* p
    cdef const int64_t[::1] offsets

    def __init__(self, values):
        """`values`: a list or a numpy array of str. Built in slices with the GIL handed
        over in between: a hot reload builds these while requests are being answered."""
        cdef Py_ssize_t i, lo, n = len(values), size, total = 0
        cdef const char* s
        cdef char* out
        cdef list chunk
        off = np.zeros(n + 1, np.int64)
        cdef int64_t[::1] o = off
        parts = []
        for lo in range(0, n, _CHUNK):
            chunk = values[lo:lo + _CHUNK] if isinstance(values, list) else np.asarray(values[lo:lo + _CHUNK], dtype=str).tolist()
            for i in range(len(chunk)):  # the UTF-8 form of a str is made once and kept by it
                PyUnicode_AsUTF8AndSize(chunk[i], &size)
                total += size
                o[lo + i + 1] = total
            buf = bytearray(o[lo + len(chunk)] - o[lo])
            out = buf
            for i in range(len(chunk)):
                s = PyUnicode_AsUTF8AndSize(chunk[i], &size)
                memcpy(out + (o[lo + i] - o[lo]), s, size)
            parts.append(bytes(buf))
            if lo + _CHUNK < n:
                pause()  # recsvc.pacing: a window, and the load's budget
        self.data = b"".join(parts)
        self.p = self.data
        self.offsets = off


# --- the request's filters (recsvc.answers.common.Scope, in C) ----------------------------

cdef struct Filters:
    # the stock and price arrays of the request's snapshot
    const uint8_t* p_stock
    const uint8_t* v_stock
    const double* p_price
    const double* v_price
    int include_oos
    int has_lo, has_hi
    double lo, hi
    int32_t* excluded  # sorted
    Py_ssize_t n_excluded
    int32_t* allowed  # category codes; n_allowed < 0: every category
    Py_ssize_t n_allowed
    int32_t* blocked
    Py_ssize_t n_blocked
    int n_attrs
    const int32_t* attr_codes[MAX_ATTRS]
    int32_t attr_want[MAX_ATTRS]


cdef struct Picks:  # chosen complements in answer order (recsvc.answers.complements.Picks)
    int n
    int32_t products[MAX_LIMIT]
    int32_t variants[MAX_LIMIT]
    double scores[MAX_LIMIT]
    int reasons[MAX_LIMIT]
    int64_t support[MAX_LIMIT]  # co-purchase: orders together
    int32_t source[MAX_LIMIT]  # co-purchase with several anchors: the anchor (index) quoted; else -1
    int32_t fill_category[MAX_LIMIT]  # category fill: the category it is popular in; else -1
    int32_t fill_own[MAX_LIMIT]  # ... and the anchors' category it goes well with


cdef struct Entry:  # one co-purchase row entry of one anchor, for merging rows
    int32_t code, pos, support, source
    float score


cdef struct Merged:  # a candidate to rank: merged rows, or a popular product found
    double total
    int32_t code, variant, support, source, order


cdef int _cmp_entry(const void* a, const void* b) noexcept nogil:
    cdef const Entry* x = <const Entry*>a
    cdef const Entry* y = <const Entry*>b
    if x.code != y.code:
        return -1 if x.code < y.code else 1
    return (x.pos > y.pos) - (x.pos < y.pos)


cdef int _cmp_merged(const void* a, const void* b) noexcept nogil:
    """Highest total first; equal totals in the order stored (`order`): a stable sort."""
    cdef const Merged* x = <const Merged*>a
    cdef const Merged* y = <const Merged*>b
    if x.total != y.total:
        return -1 if x.total > y.total else 1
    return (x.order > y.order) - (x.order < y.order)


cdef int _cmp_i32(const void* a, const void* b) noexcept nogil:
    cdef int32_t x = (<const int32_t*>a)[0], y = (<const int32_t*>b)[0]
    return (x > y) - (x < y)


cdef void _sort_i32(int32_t* xs, Py_ssize_t n) noexcept:
    """Ascending. A request excludes a few dozen products (a substitute's frequent
    complements): insertion sort, inline, where glibc's qsort (a merge sort calling the
    comparison through a pointer) took ~1.3 us of a 14 us substitutes call."""
    cdef Py_ssize_t i, j
    cdef int32_t x
    if n > 64:
        qsort(xs, n, sizeof(int32_t), _cmp_i32)
        return
    for i in range(1, n):
        x = xs[i]
        j = i
        while j > 0 and xs[j - 1] > x:
            xs[j] = xs[j - 1]
            j -= 1
        xs[j] = x


cdef inline bint _in_sorted(const int32_t* xs, Py_ssize_t n, int32_t x) noexcept:
    cdef Py_ssize_t lo = 0, hi = n, mid
    while lo < hi:
        mid = (lo + hi) >> 1
        if xs[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo < n and xs[lo] == x


cdef inline bint _in(const int32_t* xs, Py_ssize_t n, int32_t x) noexcept:
    cdef Py_ssize_t i
    for i in range(n):
        if xs[i] == x:
            return True
    return False


cdef int32_t* _c_array(list values) except? NULL:
    cdef Py_ssize_t i, n = len(values)
    cdef int32_t* out = <int32_t*>malloc(max(n, 1) * sizeof(int32_t))
    if out == NULL:
        raise MemoryError()
    for i in range(n):
        out[i] = values[i]
    return out


cdef class _State:
    """The arrays of one stock view and one price view (a new view is new arrays)."""
    cdef object stock, prices
    cdef const uint8_t[::1] p_stock, v_stock
    cdef const double[::1] p_price, v_price

    def __init__(self, stock, prices):
        self.stock, self.prices = stock, prices
        self.p_stock = stock.product.view(np.uint8)
        self.v_stock = stock.variant.view(np.uint8)
        self.p_price = prices.product
        self.v_price = prices.variant


cdef class _Request:
    """What one request asks, parsed from its message; owns the C arrays of `f` and
    keeps the snapshot its pointers read."""
    cdef Filters f
    cdef int limit
    cdef list attr_names, attr_values
    cdef _State state

    def __dealloc__(self):
        free(self.f.excluded)
        free(self.f.allowed)
        free(self.f.blocked)


# --- writing the wire format ---------------------------------------------------------------

cdef struct Buf:
    char* p
    Py_ssize_t n, cap


cdef int _grow(Buf* b, Py_ssize_t more) except -1:
    cdef Py_ssize_t cap
    cdef char* p
    if b.n + more <= b.cap:
        return 0
    cap = max(2 * b.cap, b.n + more + 256)
    p = <char*>malloc(cap)
    if p == NULL:
        raise MemoryError()
    if b.n:
        memcpy(p, b.p, b.n)
    free(b.p)
    b.p, b.cap = p, cap
    return 0


cdef inline int _varint(Buf* b, uint64_t x) except -1:
    _grow(b, 10)
    while x >= 0x80:
        b.p[b.n] = <char>((x & 0x7F) | 0x80)
        b.n += 1
        x >>= 7
    b.p[b.n] = <char>x
    b.n += 1
    return 0


cdef inline int _bytes_field(Buf* b, int tag, const char* s, Py_ssize_t n) except -1:
    """A string field; proto3 leaves an empty one out."""
    if n <= 0:
        return 0
    _varint(b, tag)
    _varint(b, n)
    _grow(b, n)
    memcpy(b.p + b.n, s, n)
    b.n += n
    return 0


cdef inline int _double_field(Buf* b, int tag, double x, bint always) except -1:
    """A double; an implicit-presence one is left out when its bits are zero (as upb)."""
    cdef uint64_t bits
    memcpy(&bits, &x, 8)
    if bits == 0 and not always:
        return 0
    _varint(b, tag)
    _grow(b, 8)
    memcpy(b.p + b.n, &x, 8)  # little-endian machines only (checked at import)
    b.n += 8
    return 0


cdef inline int _row_field(Buf* b, int tag, Strings s, Py_ssize_t i) except -1:
    return _bytes_field(b, tag, s.p + s.offsets[i], s.offsets[i + 1] - s.offsets[i])


import sys as _sys
if _sys.byteorder != "little":
    raise ImportError("recsvc.fast writes little-endian doubles")


cdef Py_ssize_t _thousands(char* out, int64_t x) noexcept:
    """f"{x:,}" (at most 27 bytes)."""
    cdef uint64_t u = <uint64_t>x
    if x < 0:
        out[0] = b'-'
        return 1 + _thousands_u(out + 1, <uint64_t>0 - u)
    return _thousands_u(out, u)


cdef Py_ssize_t _percent_tail(char* out, double pct, bint cheaper) noexcept:
    """", %.0f%% cheaper" (or dearer) for 0 <= pct < 9e15: nearbyint rounds half to
    even on the exact value, as printf's %.0f and Python's format do, and below 2^53
    the integer is exact (at most 30 bytes)."""
    cdef Py_ssize_t j = 2
    out[0], out[1] = b',', b' '
    j += _thousands_u(out + j, <uint64_t>nearbyint(pct), False)
    if cheaper:
        memcpy(out + j, b"% cheaper", 9)
        return j + 9
    memcpy(out + j, b"% dearer", 8)
    return j + 8


cdef Py_ssize_t _thousands_u(char* out, uint64_t x, bint commas=True) noexcept:
    """x's decimal digits, with a comma between thousands unless `commas` is false."""
    cdef char digits[24]
    cdef int n = 0, i, j = 0
    while True:
        digits[n] = <char>(48 + x % 10)
        n += 1
        x //= 10
        if x == 0:
            break
    for i in range(n - 1, -1, -1):
        out[j] = digits[i]
        j += 1
        if commas and i and i % 3 == 0:
            out[j] = b','
            j += 1
    return j


cdef class _Writer:
    """The buffers of one response; freed with it, whatever happens."""
    cdef Buf out, tmp, why

    def __dealloc__(self):
        free(self.out.p)
        free(self.tmp.p)
        free(self.why.p)


# --- the kernel ---------------------------------------------------------------------------

cdef class Kernel:
    """One model's arrays and strings, and the config its answers depend on."""
    cdef readonly object model
    cdef IdSearch variants, products
    cdef const int32_t[::1] variant_product, product_category, product_variants, category_popular
    cdef const int64_t[::1] pv_indptr, cat_pop_indptr
    cdef const int32_t[:, ::1] comp_idx, comp_support, subs_idx
    cdef const int32_t[:, ::1] cat_comp_idx
    cdef const float[:, ::1] cat_comp_score
    cdef IdSearch users
    cdef const int64_t[::1] ui_indptr
    cdef const int32_t[::1] ui_indices, popular_order, popularity_count
    cdef const float[::1] popularity
    cdef const uint8_t[::1] repeat_category  # per category: bought products stay recommendable
    cdef object item_factors, user_factors
    cdef const float[:, ::1] f_items, f_users
    cdef int64_t exact_max
    cdef int bundle_candidates, bundle_max_items
    cdef const float[:, ::1] comp_score, subs_score
    cdef Strings product_ids, titles, categories, variant_ids
    cdef const uint8_t[::1] own_blocked  # per category: complements never come from it
    cdef dict category_index, attributes
    cdef list subs_within  # per category: the categories its substitutes come from
    cdef bytes version
    cdef int default_limit, subs_min_support
    cdef double band
    cdef _State _last  # the snapshot of the last request, reused while it is current
    cdef dict _promotions  # id(Promotion) -> (it, the codes it names, its message, its end)
    cdef object _BundleLine, _PricedBundle, _price_lines, _explain, _wire  # the Python side of bundle pricing

    def __init__(self, model, config):
        self.model = model
        self.variants = IdSearch(model.variant_index)
        self.products = IdSearch(model.product_index)
        i32 = lambda a: np.ascontiguousarray(a, dtype=np.int32)
        self.variant_product = i32(model.variant_product)
        self.product_category = i32(model.product_category)
        self.product_variants = i32(model.product_variants)
        self.category_popular = i32(model.category_popular)
        self.pv_indptr = np.ascontiguousarray(model.product_variants_indptr, dtype=np.int64)
        self.cat_pop_indptr = np.ascontiguousarray(model.category_popular_indptr, dtype=np.int64)
        self.comp_idx = i32(model.complements_idx)  # (P, K): load_model checked the shapes
        self.comp_support = i32(model.complements_support)
        self.comp_score = np.ascontiguousarray(model.complements_score, dtype=np.float32)
        self.subs_idx = i32(model.substitutes_idx)
        self.subs_score = np.ascontiguousarray(model.substitutes_score, dtype=np.float32)
        pause()
        self.product_ids = Strings(model.product_id_list)
        pause()
        self.titles = Strings(model.product_title_list)
        pause()
        self.categories = Strings(list(model.category_names))
        self.variant_ids = Strings(model.variant_ids)
        pause()
        same_ok = set(config.complements_same_category)
        self.own_blocked = np.array([name not in same_ok for name in model.category_names] or [0], np.uint8)
        self.category_index = dict(model.category_index)
        self.attributes = {name: (i32(a.codes), dict(a.values)) for name, a in model.attributes.items()}
        self.subs_within = [[c] + [model.category_index[x] for x in config.substitutes_category_map.get(name, [])
                                   if x in model.category_index]
                            for c, name in enumerate(model.category_names)]
        self.cat_comp_idx = i32(model.category_complements_idx)
        self.cat_comp_score = np.ascontiguousarray(model.category_complements_score, dtype=np.float32)
        self.users = IdSearch(model.user_index)
        pause()
        self.ui_indptr = np.ascontiguousarray(model.user_items_indptr, dtype=np.int64)
        self.ui_indices = i32(model.user_items_indices)
        self.popular_order = i32(model.popular_order)
        self.popularity_count = i32(model.popularity_count)
        self.popularity = np.ascontiguousarray(model.popularity, dtype=np.float32)
        repeat = set(config.recommend_repeat_categories)
        self.repeat_category = np.array([name in repeat for name in model.category_names] or [0], np.uint8)
        self.item_factors, self.user_factors = model.item_factors, model.user_factors
        self.f_items = np.ascontiguousarray(model.item_factors, dtype=np.float32)
        self.f_users = np.ascontiguousarray(model.user_factors, dtype=np.float32)
        self.exact_max = config.recommend_exact_max_products
        self.bundle_candidates = config.bundle_candidates
        self.bundle_max_items = config.bundle_max_items
        self.version = model.version.encode()
        from recsvc import wire
        from recsvc.answers.bundles import explain
        from recsvc.promotions import BundleLine, PricedBundle, price_bundle
        self._promotions = {}
        self._BundleLine, self._price_lines, self._explain, self._wire = BundleLine, price_bundle, explain, wire
        self._PricedBundle = PricedBundle
        self.default_limit = config.default_limit
        self.subs_min_support = config.substitutes_min_complement_support
        self.band = config.substitutes_price_band

    cdef int _bind(self, _Request r, stock, prices) except -1:
        """Point the request at its stock and price snapshot. Each request holds its own
        (another thread may bind a newer one meanwhile)."""
        cdef _State st = self._last
        if st is None or st.stock is not stock or st.prices is not prices:
            st = _State(stock, prices)
            self._last = st
        r.state = st
        r.f.p_stock, r.f.v_stock = &st.p_stock[0], &st.v_stock[0]
        r.f.p_price, r.f.v_price = &st.p_price[0], &st.v_price[0]
        return 0

    # --- request parsing: None from here means "let Python answer" --------------------
    cdef int64_t _resolve(self, object item_id, int64_t* variant) except -3:
        """The product of a variant or product id (variant: its variant, else -1);
        -1 unknown, -2 undecided."""
        cdef int64_t v = self.variants.find(item_id), p
        if v == -2:
            return -2
        if v >= 0:
            variant[0] = v
            return self.variant_product[v]
        variant[0] = -1
        return self.products.find(item_id)

    cdef int _products_of(self, ids, list out) except -1:
        """Products named by ids, unknown ones skipped (recsvc.answers.common.products_of);
        -2 when one cannot be judged here."""
        cdef int64_t p, v
        for item_id in ids:
            if not item_id:
                continue  # "" is unknown to every catalog
            p = self._resolve(item_id, &v)
            if p == -2:
                return -2
            if p >= 0:
                out.append(p)
        return 0

    cdef _Request _parse(self, request, excluded, within, str limit_field="limit", int default_limit=0):
        """Limit, context and filter of a request; None if Python must answer it."""
        cdef _Request r = _Request()
        cdef Filters* f = &r.f
        cdef int k
        cdef const int32_t[::1] mv
        f.n_allowed = -1
        if request.HasField(limit_field):
            r.limit = getattr(request, limit_field)
        else:
            r.limit = default_limit or self.default_limit
        if r.limit < 1 or r.limit > MAX_LIMIT:
            return None
        if request.HasField("context"):
            ctx = request.context
            if self._products_of(ctx.cart_item_ids, excluded) < 0 or \
                    self._products_of(ctx.shown_item_ids, excluded) < 0:
                return None
        r.attr_names, r.attr_values = [], []
        if request.HasField("filter"):
            filt = request.filter
            f.include_oos = filt.include_out_of_stock
            if self._products_of(filt.exclude_item_ids, excluded) < 0:
                return None
            if filt.HasField("min_price"):
                f.has_lo, f.lo = 1, filt.min_price
                if not (f.lo >= 0 and f.lo < float("inf")):
                    return None
            if filt.HasField("max_price"):
                f.has_hi, f.hi = 1, filt.max_price
                if not (f.hi >= 0 and f.hi < float("inf")):
                    return None
            if f.has_lo and f.has_hi and f.lo > f.hi:
                return None
            if len(filt.categories):
                allowed = set()
                for name in filt.categories:
                    code = self.category_index.get(name)
                    if code is None:
                        return None
                    allowed.add(code)
                if within is not None:
                    allowed &= set(within)
                within = sorted(allowed)
            if len(filt.attributes):
                attrs = dict(filt.attributes)
                if len(attrs) > MAX_ATTRS:
                    return None
                for name, value in attrs.items():
                    a = self.attributes.get(name)
                    if a is None:
                        return None
                    codes, values = a
                    k = f.n_attrs
                    if len(codes):
                        mv = codes
                        f.attr_codes[k] = &mv[0]  # the array lives as long as the kernel
                    else:
                        f.attr_codes[k] = NULL
                    f.attr_want[k] = values.get(value, -2)  # -2: no variant has it
                    f.n_attrs += 1
                    r.attr_names.append(name)
                    r.attr_values.append(value)
        if within is not None:
            f.allowed = _c_array(list(within))
            f.n_allowed = len(within)
        f.excluded = _c_array(excluded)
        f.n_excluded = len(excluded)
        _sort_i32(f.excluded, f.n_excluded)
        return r

    # --- Scope.first / _variant_of ------------------------------------------------------
    cdef inline int32_t _variant_of(self, Filters* f, int32_t product) noexcept:
        cdef int64_t j
        cdef int32_t v
        cdef int k
        cdef bint ok
        for j in range(self.pv_indptr[product], self.pv_indptr[product + 1]):
            v = self.product_variants[j]
            if not f.include_oos and not f.v_stock[v]:
                continue
            ok = True
            for k in range(f.n_attrs):
                if f.attr_codes[k] == NULL or f.attr_codes[k][v] != f.attr_want[k]:
                    ok = False
                    break
            if ok:
                return v
        return -1

    cdef inline int32_t _passes(self, Filters* f, int32_t c) noexcept:
        """-2: fails; else the matching variant (-1 without attribute filters)."""
        cdef int32_t k
        cdef double x
        if c < 0 or _in_sorted(f.excluded, f.n_excluded, c):
            return -2
        if not f.include_oos and f.n_attrs == 0 and not f.p_stock[c]:
            return -2
        if f.n_allowed >= 0 or f.n_blocked:
            k = self.product_category[c]
            if _in(f.blocked, f.n_blocked, k) or (f.n_allowed >= 0 and not _in(f.allowed, f.n_allowed, k)):
                return -2
        if f.has_lo or f.has_hi:
            x = f.p_price[c]  # NaN fails any bound
            if (f.has_lo and not x >= f.lo) or (f.has_hi and not x <= f.hi):
                return -2
        if f.n_attrs:
            k = self._variant_of(f, c)
            return -2 if k < 0 else k
        return -1

    cdef void _fetch_rows(self, int64_t p, bint substitutes) noexcept:
        """Start loading product p's co-purchase (and substitute) rows: an anchor's rows are
        read first thing after the request is parsed, which gives them time to arrive."""
        cdef Py_ssize_t b
        cdef Py_ssize_t K = self.comp_idx.shape[1] * sizeof(int32_t)
        cdef Py_ssize_t S = self.subs_idx.shape[1] * sizeof(int32_t)
        for b in range(0, K, 64):
            __builtin_prefetch(<const char*>&self.comp_idx[p, 0] + b)
            __builtin_prefetch(<const char*>&self.comp_support[p, 0] + b)
            if not substitutes:
                __builtin_prefetch(<const char*>&self.comp_score[p, 0] + b)
        if substitutes:
            for b in range(0, S, 64):
                __builtin_prefetch(<const char*>&self.subs_idx[p, 0] + b)
                __builtin_prefetch(<const char*>&self.subs_score[p, 0] + b)

    cdef inline void _fetch_candidate(self, Filters* f, int32_t c) noexcept:
        """Start loading what _passes reads of product c. Its reads are cache misses (one
        random product each), and the scan's branches depend on them, so without this
        they come one after another."""
        if c < 0:
            return
        __builtin_prefetch(&f.p_stock[c])
        if f.n_allowed >= 0 or f.n_blocked:
            __builtin_prefetch(&self.product_category[c])
        if f.has_lo or f.has_hi:
            __builtin_prefetch(&f.p_price[c])
        if f.n_attrs:
            __builtin_prefetch(&self.pv_indptr[c])

    cdef int _first(self, Filters* f, const int32_t* cands, Py_ssize_t n, int limit,
                    int* pos, int32_t* var) noexcept:
        cdef Py_ssize_t i
        cdef int got = 0
        cdef int32_t v
        for i in range(min(n, AHEAD)):
            self._fetch_candidate(f, cands[i])
        for i in range(n):
            if i + AHEAD < n:
                self._fetch_candidate(f, cands[i + AHEAD])
            v = self._passes(f, cands[i])
            if v == -2:
                continue
            pos[got] = <int>i
            var[got] = v
            got += 1
            if got >= limit:
                break
        return got

    # --- dressing an item -----------------------------------------------------------------
    cdef inline double _price(self, Filters* f, int32_t p, int32_t v) noexcept:
        return f.v_price[v] if v >= 0 else f.p_price[p]

    cdef void _fetch_items(self, Filters* f, const int32_t* products, const int32_t* variants, int n) noexcept:
        """Start loading what _item reads of the n items an answer is about to write: the
        strings' offsets first, then (those having arrived meanwhile) the strings."""
        cdef int i
        cdef int32_t p, v
        for i in range(n):
            p, v = products[i], variants[i]
            __builtin_prefetch(&self.product_ids.offsets[p])
            __builtin_prefetch(&self.titles.offsets[p])
            __builtin_prefetch(&self.product_category[p])
            if v >= 0:
                __builtin_prefetch(&self.variant_ids.offsets[v])
                __builtin_prefetch(&f.v_price[v])
                __builtin_prefetch(&f.v_stock[v])
            else:
                __builtin_prefetch(&f.p_price[p])
                __builtin_prefetch(&f.p_stock[p])
        for i in range(n):
            p, v = products[i], variants[i]
            __builtin_prefetch(self.product_ids.p + self.product_ids.offsets[p])
            __builtin_prefetch(self.titles.p + self.titles.offsets[p])
            if v >= 0:
                __builtin_prefetch(self.variant_ids.p + self.variant_ids.offsets[v])

    cdef int _item(self, Filters* f, Buf* out, Buf* tmp, int32_t p, int32_t v, double score, int reason,
                   const char* why, Py_ssize_t why_n, int tag=0x0A) except -1:
        """One Item, as recsvc.wire.items_response writes it."""
        cdef double price = self._price(f, p, v)
        cdef bint in_stock = f.v_stock[v] if v >= 0 else f.p_stock[p]
        tmp.n = 0
        _row_field(tmp, 0x0A, self.product_ids, p)
        _double_field(tmp, 0x11, score, False)
        if reason:
            _varint(tmp, 0x18)
            _varint(tmp, reason)
        _bytes_field(tmp, 0x22, why, why_n)
        _row_field(tmp, 0x2A, self.titles, p)
        _row_field(tmp, 0x32, self.categories, self.product_category[p])
        if price == price:
            _double_field(tmp, 0x39, price, True)
        if in_stock:
            _varint(tmp, 0x40)
            _varint(tmp, 1)
        if v >= 0:
            _row_field(tmp, 0x4A, self.variant_ids, v)
        _varint(out, tag)
        _varint(out, tmp.n)
        _grow(out, tmp.n)
        memcpy(out.p + out.n, tmp.p, tmp.n)
        out.n += tmp.n
        return 0

    cdef bytes _finish(self, Buf* out, str request_id):
        cdef Py_ssize_t n
        cdef const char* s
        _bytes_field(out, 0x12, self.version, len(self.version))
        s = PyUnicode_AsUTF8AndSize(request_id, &n)
        _bytes_field(out, 0x1A, s, n)
        return PyBytes_FromStringAndSize(out.p, out.n)

    # --- GetComplements -----------------------------------------------------------------
    cdef int _pick_complements(self, Filters* f, const int32_t* anchors, int n_anchors, int limit,
                               Picks* pk) except -2:
        """recsvc.answers.complements.pick_complements: one anchor's co-purchase row, or
        several anchors' rows merged, under the filters, then filled from the categories
        that go with the anchors' categories; -1 when Python must answer."""
        cdef int pos[MAX_LIMIT]
        cdef int32_t var[MAX_LIMIT]
        cdef int32_t own[MAX_OWN]
        cdef int32_t blocked[MAX_OWN]
        cdef int got, i, n_own = 0, n_blocked = 0
        cdef int32_t a = anchors[0], c
        if limit > MAX_LIMIT:
            return -1
        for i in range(n_anchors):  # the anchors' categories, in first-seen order
            c = self.product_category[anchors[i]]
            if not _in(own, n_own, c):
                if n_own == MAX_OWN:
                    return -1
                own[n_own] = c
                n_own += 1
                if self.own_blocked[c]:
                    blocked[n_blocked] = c
                    n_blocked += 1
        f.blocked, f.n_blocked = blocked, n_blocked
        try:
            if n_anchors == 1:  # the common case: one stored row, already best first
                got = self._first(f, &self.comp_idx[a, 0], self.comp_idx.shape[1], limit, pos, var)
                for i in range(got):
                    pk.products[i], pk.variants[i] = self.comp_idx[a, pos[i]], var[i]
                    pk.scores[i] = <double>self.comp_score[a, pos[i]]
                    pk.reasons[i], pk.support[i] = REASON_CO_PURCHASE, self.comp_support[a, pos[i]]
                    pk.source[i], pk.fill_category[i], pk.fill_own[i] = -1, -1, -1
                pk.n = got
            elif self._merge_rows(f, anchors, n_anchors, limit, pk) < 0:
                return -1
            if pk.n < limit:
                return self._fill_from_categories(f, own, n_own, limit, pk)
            return pk.n
        finally:
            f.blocked, f.n_blocked = NULL, 0  # a stack array: not the request's to free

    cdef int _merge_rows(self, Filters* f, const int32_t* anchors, int n_anchors, int limit, Picks* pk) except -2:
        """recsvc.answers.complements._merge + Scope.keep + the sort: the candidates of
        several anchors, scores added up, the explanation quoting the anchor bought most
        often with each; the best `limit` that pass, highest total first."""
        cdef int K = self.comp_idx.shape[1], i, k, n_e = 0, n_m = 0, g, h
        cdef int32_t c, best, src
        cdef double total
        cdef Entry* e = <Entry*>malloc(max(1, n_anchors * K) * sizeof(Entry))
        cdef Merged* m = <Merged*>malloc(max(1, n_anchors * K) * sizeof(Merged))
        if e == NULL or m == NULL:
            free(e)
            free(m)
            raise MemoryError()
        try:
            for i in range(n_anchors):  # row by row, as numpy's boolean mask reads them
                for k in range(K):
                    c = self.comp_idx[anchors[i], k]
                    if c >= 0:
                        e[n_e].code, e[n_e].pos, e[n_e].source = c, n_e, i
                        e[n_e].score, e[n_e].support = self.comp_score[anchors[i], k], self.comp_support[anchors[i], k]
                        n_e += 1
            qsort(e, n_e, sizeof(Entry), _cmp_entry)  # by product, then by place in the rows
            g = 0
            while g < n_e:
                h, total, best = g, 0.0, 0  # np.maximum.at into zeros: the best support is >= 0
                while h < n_e and e[h].code == e[g].code:
                    total += <double>e[h].score  # np.bincount adds in row order
                    if e[h].support > best:
                        best = e[h].support
                    h += 1
                src = 0
                for i in range(g, h):
                    if e[i].support == best:  # the first anchor with the best support
                        src = e[i].source
                        break
                k = self._passes(f, e[g].code)
                if k != -2:
                    if total != total:
                        return -1  # NaN: numpy's sort order is its own
                    m[n_m].total, m[n_m].code, m[n_m].variant = total, e[g].code, k
                    m[n_m].support, m[n_m].source, m[n_m].order = best, src, n_m  # stored by product code
                    n_m += 1
                g = h
            qsort(m, n_m, sizeof(Merged), _cmp_merged)
            pk.n = min(n_m, limit)
            for i in range(pk.n):
                pk.products[i], pk.variants[i], pk.scores[i] = m[i].code, m[i].variant, m[i].total
                pk.reasons[i], pk.support[i], pk.source[i] = REASON_CO_PURCHASE, m[i].support, m[i].source
                pk.fill_category[i], pk.fill_own[i] = -1, -1
            return pk.n
        finally:
            free(e)
            free(m)

    cdef int _fill_from_categories(self, Filters* f, const int32_t* own, int n_own, int limit, Picks* pk) noexcept:
        """recsvc.answers.complements._fill_from_categories: the popular products of the
        categories that go with the anchors' categories, one per category in turn."""
        cdef int32_t c, q, v, sc_src
        cdef int n_row = min(self.cat_comp_idx.shape[1], FILL_ROW), k, n_cats = 0, i, j, o, rank, need
        cdef int32_t cats[MAX_OWN * FILL_ROW]
        cdef int32_t sources[MAX_OWN * FILL_ROW]  # the anchors' category (index in own) first seen with it
        cdef double totals[MAX_OWN * FILL_ROW]
        cdef int64_t cursor[MAX_OWN * FILL_ROW]
        cdef int64_t ends[MAX_OWN * FILL_ROW]
        cdef double floor = 0, sc, t
        cdef bint has_floor = pk.n > 0, found
        for o in range(n_own):  # the rows' categories, summed where repeated (np.unique + bincount)
            for k in range(n_row):
                c = self.cat_comp_idx[own[o], k]
                if c < 0:
                    continue
                for i in range(n_cats):
                    if cats[i] == c:
                        totals[i] += <double>self.cat_comp_score[own[o], k]
                        break
                else:
                    cats[n_cats], totals[n_cats], sources[n_cats] = c, <double>self.cat_comp_score[own[o], k], o
                    n_cats += 1
        for i in range(n_cats):
            if totals[i] != totals[i]:
                return -1  # NaN: numpy's sort order is its own
        for i in range(1, n_cats):  # by category code (np.unique), then stable by total, highest first
            c, t, sc_src, j = cats[i], totals[i], sources[i], i - 1
            while j >= 0 and cats[j] > c:
                cats[j + 1], totals[j + 1], sources[j + 1] = cats[j], totals[j], sources[j]
                j -= 1
            cats[j + 1], totals[j + 1], sources[j + 1] = c, t, sc_src
        for i in range(1, n_cats):
            c, t, sc_src, j = cats[i], totals[i], sources[i], i - 1
            while j >= 0 and totals[j] < t:
                cats[j + 1], totals[j + 1], sources[j + 1] = cats[j], totals[j], sources[j]
                j -= 1
            cats[j + 1], totals[j + 1], sources[j + 1] = c, t, sc_src
        for i in range(n_cats):
            cursor[i] = self.cat_pop_indptr[cats[i]]
            ends[i] = min(self.cat_pop_indptr[cats[i] + 1], cursor[i] + SCAN_CAP)
        for i in range(pk.n):
            if pk.scores[i] != pk.scores[i]:
                return -1  # NaN: Python's min() order is its own
            if i == 0 or pk.scores[i] < floor:
                floor = pk.scores[i]
        need = limit - pk.n
        for rank in range(need):  # round robin: every category's best, then every second best...
            for i in range(n_cats):
                if pk.n >= limit:
                    return pk.n
                found = False
                while cursor[i] < ends[i]:  # the category's next product that passes and is not taken
                    q = self.category_popular[cursor[i]]
                    cursor[i] += 1
                    v = self._passes(f, q)
                    if v != -2 and not _in(pk.products, pk.n, q):
                        found = True
                        break
                if not found:
                    continue
                sc = totals[i] / (rank + 1)
                if has_floor and floor < sc:
                    sc = floor  # fills rank below every co-purchase item
                floor, has_floor = sc, True
                pk.products[pk.n], pk.variants[pk.n], pk.scores[pk.n] = q, v, sc
                pk.reasons[pk.n], pk.support[pk.n], pk.source[pk.n] = REASON_CATEGORY_FALLBACK, 0, -1
                pk.fill_category[pk.n], pk.fill_own[pk.n] = cats[i], own[sources[i]]
                pk.n += 1
        return pk.n

    cdef Py_ssize_t _complement_why(self, Picks* pk, int i, const int32_t* anchors, Buf* why) except -1:
        """The explanation of pick i, into `why` (emptied first)."""
        cdef int32_t c = pk.fill_category[i], o = pk.fill_own[i], a
        why.n = 0
        _grow(why, 64)
        if c >= 0:
            _append(why, b"popular in ", 11)
            _append(why, self.categories.p + self.categories.offsets[c],
                    self.categories.offsets[c + 1] - self.categories.offsets[c])
            _append(why, b", which goes well with ", 23)
            _append(why, self.categories.p + self.categories.offsets[o],
                    self.categories.offsets[o + 1] - self.categories.offsets[o])
        elif pk.source[i] < 0 or pk.support[i] <= 0:
            why.n = _said_together(why.p, pk.support[i])
        else:  # several anchors: name the one bought most often with it (its title, else its id)
            a = anchors[pk.source[i]]
            _append(why, b"bought together with ", 21)
            if self.titles.offsets[a + 1] > self.titles.offsets[a]:
                _append(why, self.titles.p + self.titles.offsets[a], self.titles.offsets[a + 1] - self.titles.offsets[a])
            else:
                _append(why, self.product_ids.p + self.product_ids.offsets[a],
                        self.product_ids.offsets[a + 1] - self.product_ids.offsets[a])
            _append(why, b" in ", 4)
            _grow(why, 40)
            why.n += _thousands(why.p + why.n, pk.support[i])
            if pk.support[i] != 1:
                _append(why, b" orders", 7)
            else:
                _append(why, b" order", 6)
        return why.n

    def complements(self, request, stock, prices, str request_id):
        """(ItemsResponse bytes, reasons), as recsvc.answers.complements (one anchor or a
        cart of them); None whenever Python must answer."""
        cdef int64_t a, v
        cdef int got, i, n_anchors = 0
        cdef Picks pk
        cdef _Writer w
        cdef int32_t anchors[MAX_LIMIT]
        ids = request.item_ids
        if len(ids) == 0 or len(ids) > MAX_LIMIT:
            return None
        for item_id in ids:  # products, each once, in the order named (dict.fromkeys)
            if not item_id:
                return None
            a = self._resolve(item_id, &v)
            if a < 0:
                return None
            self._fetch_rows(a, False)
            if not _in(anchors, n_anchors, <int32_t>a):
                anchors[n_anchors] = <int32_t>a
                n_anchors += 1
        cdef _Request r = self._parse(request, [anchors[i] for i in range(n_anchors)], None)
        if r is None:
            return None
        self._bind(r, stock, prices)
        got = self._pick_complements(&r.f, anchors, n_anchors, r.limit, &pk)
        if got < 0:
            return None
        w = _Writer()
        self._fetch_items(&r.f, pk.products, pk.variants, got)
        for i in range(got):
            self._complement_why(&pk, i, anchors, &w.why)
            self._item(&r.f, &w.out, &w.tmp, pk.products[i], pk.variants[i], pk.scores[i], pk.reasons[i],
                       w.why.p, w.why.n)
        return self._finish(&w.out, request_id), tuple([pk.reasons[i] for i in range(got)])

    # --- GetSubstitutes -----------------------------------------------------------------
    def substitutes(self, request, stock, prices, str request_id):
        """(ItemsResponse bytes, reasons), as recsvc.answers.substitutes; None when
        Python must answer."""
        cdef int64_t p, v, j, lo, hi, need
        cdef int got, i, K, n_taken, passed, c_i
        cdef int pos[MAX_LIMIT]
        cdef int32_t var[MAX_LIMIT]
        cdef int32_t products[MAX_LIMIT]
        cdef int32_t variants[MAX_LIMIT]
        cdef double scores[MAX_LIMIT]
        cdef int reasons[MAX_LIMIT]
        cdef int sources[MAX_LIMIT]  # -1: similar; else the category of a popular fill
        cdef int32_t q, qv
        cdef double base, floor, price, diff
        cdef bint has_base
        cdef _Writer w
        cdef char tail[400]  # ", " + any double's %.0f digits + "% cheaper"
        cdef Py_ssize_t tail_n
        item_id = request.item_id
        if not item_id:
            return None
        p = self._resolve(item_id, &v)
        if p < 0:
            return None
        self._fetch_rows(p, True)
        own = self.product_category[p]
        within = self.subs_within[own]
        excluded = [p]
        K = self.comp_idx.shape[1]
        for i in range(K):
            if self.comp_idx[p, i] >= 0 and self.comp_support[p, i] >= self.subs_min_support:
                excluded.append(self.comp_idx[p, i])
        cdef _Request r = self._parse(request, excluded, within)
        if r is None:
            return None
        self._bind(r, stock, prices)
        base = self._price(&r.f, p, v)
        has_base = base == base
        if has_base and self.band > 0:
            if r.f.has_lo:
                r.f.lo = max(base * (1 - self.band), r.f.lo)
            else:
                r.f.lo = base * (1 - self.band)
            if r.f.has_hi:
                r.f.hi = min(base * (1 + self.band), r.f.hi)
            else:
                r.f.hi = base * (1 + self.band)
            r.f.has_lo = r.f.has_hi = 1
        K = self.subs_idx.shape[1]
        got = self._first(&r.f, &self.subs_idx[p, 0], K, r.limit, pos, var)
        for i in range(got):
            products[i] = self.subs_idx[p, pos[i]]
            variants[i] = var[i]
            scores[i] = <double>self.subs_score[p, pos[i]]
            reasons[i] = REASON_SIMILAR
            sources[i] = -1
        n_taken = 0  # distinct products so far (Python's `taken` set)
        for i in range(got):
            if not _in(products, i, products[i]):
                n_taken += 1
        floor = scores[got - 1] if got else 1.0
        for c in within:  # too few: the category's popular products, under the same rules
            if got >= r.limit:
                break
            c_i = c
            lo, hi = self.cat_pop_indptr[c_i], self.cat_pop_indptr[c_i + 1]
            hi = min(hi, lo + SCAN_CAP)
            need = r.limit - got + n_taken  # Scope.walk's count, then the taken ones are skipped
            passed = 0
            j = lo
            while j < hi and passed < need and got < r.limit:
                q = self.category_popular[j]
                j += 1
                qv = self._passes(&r.f, q)
                if qv == -2:
                    continue
                passed += 1
                if _in(products, got, q):
                    continue
                floor *= 0.99  # fills rank below every similar item, in popularity order
                products[got], variants[got], scores[got] = q, qv, floor
                reasons[got], sources[got] = REASON_POPULAR, c_i
                got += 1
                n_taken += 1
        self._fetch_items(&r.f, products, variants, got)
        # explanations: recsvc.answers.substitutes._explain
        if r.f.n_attrs:
            desc = ", ".join(f"{k} {x}" for k, x in zip(r.attr_names, r.attr_values))
            attr_part = (f", your {desc} is in stock" if not r.f.include_oos else f", comes in {desc}").encode()
        elif not r.f.include_oos:
            attr_part = b", in stock"
        else:
            attr_part = b""
        heads = {}
        w = _Writer()
        for i in range(got):
            head = heads.get(sources[i])
            if head is None:
                head = heads[sources[i]] = (b"similar style" if sources[i] < 0 else
                                            b"popular in " + self.model.category_names[sources[i]].encode()) \
                    + attr_part
            w.why.n = 0
            _grow(&w.why, len(head) + 64)
            memcpy(w.why.p, <const char*>head, len(head))
            w.why.n = len(head)
            if has_base and base != 0:
                price = self._price(&r.f, products[i], variants[i])
                if price == price:
                    diff = (price - base) / base
                    if fabs(diff) < 0.005:
                        tail_n = snprintf(tail, 400, b", same price")
                    elif fabs(diff) * 100.0 < 9.0e15:  # %.0f's integer, without printf (~10 % of the call)
                        tail_n = _percent_tail(tail, fabs(diff) * 100.0, diff < 0)
                    else:
                        tail_n = snprintf(tail, 400, b", %.0f%% %s", fabs(diff) * 100.0,
                                          <const char*>(b"cheaper" if diff < 0 else b"dearer"))
                    if tail_n >= 400:  # cannot happen for a finite ratio; never copy past the text
                        return None
                    _append(&w.why, tail, tail_n)
            self._item(&r.f, &w.out, &w.tmp, products[i], variants[i], scores[i], reasons[i], w.why.p, w.why.n)
        return self._finish(&w.out, request_id), tuple([reasons[i] for i in range(got)])

    # --- GetBundle ----------------------------------------------------------------------
    def bundle(self, request, stock, prices, str request_id, list active, now):
        """(BundleResponse bytes, reasons), as recsvc.answers.bundles; None when Python
        must answer. `active`: the promotions active at `now`, the request's moment; the
        complements one of them covers win their slot. Prices in whole cents are summed
        and discounted here in integers, as Decimal would; other prices under a
        promotion are priced by recsvc.promotions.price_bundle itself, called from here."""
        cdef int64_t a, v, k_cents, total_cents = 0
        cdef int got, i, n_pool = 0, n_chosen = 0, n_fresh, n_window, slot, j, limit, pick
        cdef Picks pk
        cdef int32_t anchor[1]
        cdef int pool[MAX_LIMIT]
        cdef int fresh[MAX_LIMIT]
        cdef int chosen[MAX_LIMIT]
        cdef int32_t in_bundle[MAX_LIMIT + 1]
        cdef double price, list_price = 0, bundle_price = 0, saving = 0
        cdef char why[128]
        cdef Py_ssize_t why_n
        cdef _Writer w
        if not request.item_id:
            return None
        a = self._resolve(request.item_id, &v)
        if a < 0:
            return None
        max_items = request.max_items if request.HasField("max_items") else 1
        if max_items < 1 or max_items > self.bundle_max_items:
            return None
        limit = self.bundle_candidates + max_items - 1
        cdef _Request r = self._parse(request, [a], None, "max_items", 1)
        if r is None:
            return None
        promos = [self._promotion(p) for p in active]
        covers = [cached[1] for cached in promos]  # (min_items, variants, products, categories)
        if None in covers:
            return None
        r.f.include_oos = 0  # a bundle is bought now: its complements must be in stock
        self._bind(r, stock, prices)
        price = self._price(&r.f, a, v)
        if not (price >= 0 and price < float("inf")):
            return None  # no price (Unpriced), or one price_bundle refuses: Python's errors
        anchor[0] = <int32_t>a
        got = self._pick_complements(&r.f, anchor, 1, limit, &pk)
        if got < 0:
            return None
        for i in range(got):  # complements without a known price cannot be in a bundle
            price = self._price(&r.f, pk.products[i], pk.variants[i])
            if price == price:
                if covers and not price < float("inf"):
                    return None  # price_bundle would refuse it while weighing the window
                pool[n_pool] = i
                n_pool += 1
        in_bundle[0] = self.product_category[a]
        matched = [self._line_matches(c, a, v) for c in covers]  # per promotion: a line it names
        for slot in range(max_items):  # one per category while there is a choice
            if n_pool == 0:
                break
            n_fresh = 0
            for i in range(n_pool):
                if not _in(in_bundle, slot + 1, self.product_category[pk.products[pool[i]]]):
                    fresh[n_fresh] = i
                    n_fresh += 1
            if n_fresh == 0:
                for i in range(n_pool):
                    fresh[i] = i
                n_fresh = n_pool
            n_window = min(n_fresh, self.bundle_candidates)
            pick = fresh[0]
            for i in range(n_window if covers else 0):  # the best-ranked one a promotion covers
                j = pool[fresh[i]]
                if any(slot + 2 >= c[0] and (m or self._line_matches(c, pk.products[j], pk.variants[j]))
                       for c, m in zip(covers, matched)):
                    pick = fresh[i]
                    break
            j = pool[pick]
            chosen[n_chosen] = j
            n_chosen += 1
            for i in range(pick, n_pool - 1):
                pool[i] = pool[i + 1]
            n_pool -= 1
            in_bundle[slot + 1] = self.product_category[pk.products[j]]
            matched = [m or self._line_matches(c, pk.products[j], pk.variants[j]) for c, m in zip(covers, matched)]
        cents_ok = _cents_of(self._price(&r.f, a, v), &total_cents)  # every price in whole cents?
        for i in range(n_chosen):
            if cents_ok and _cents_of(self._price(&r.f, pk.products[chosen[i]], pk.variants[chosen[i]]), &k_cents):
                total_cents += k_cents
            else:
                cents_ok = False
        if covers:
            priced = self._price_in_cents(promos, matched, n_chosen + 1, total_cents) if cents_ok else None
            if priced is None:  # prices or promotion values Decimal holds otherwise: its own pricing
                priced = self._price_bundle(&r.f, request.item_id, a, v, &pk, chosen, n_chosen, active, now)
            list_price, bundle_price, saving = priced.list_price, priced.bundle_price, priced.saving
            text = self._explain(priced, n_chosen + 1).encode()
        else:
            if not cents_ok:
                return None  # Decimal would round otherwise: Python's
            list_price = bundle_price = total_cents / 100.0
            priced = None
        w = _Writer()
        self._item(&r.f, &w.out, &w.tmp, a, v, 0.0, 0, b"the item the customer is looking at", 35, 0x0A)
        for i in range(n_chosen):
            j = chosen[i]
            self._complement_why(&pk, j, anchor, &w.why)
            self._item(&r.f, &w.out, &w.tmp, pk.products[j], pk.variants[j], pk.scores[j], pk.reasons[j],
                       w.why.p, w.why.n, 0x12)
        _double_field(&w.out, 0x19, list_price, False)
        _double_field(&w.out, 0x21, bundle_price, False)
        _double_field(&w.out, 0x29, saving, False)
        if priced is not None:
            if priced.promotion is not None:
                blobs = self._promotion(priced.promotion)
                for tag, blob in ((0x32, blobs[2]), (0x3A, blobs[3])):  # the promotion, its end (valid_until)
                    _bytes_field(&w.out, tag, blob, len(blob))
                    if not len(blob):  # present, if empty
                        _varint(&w.out, tag)
                        _varint(&w.out, 0)
            _bytes_field(&w.out, 0x42, text, len(text))
        else:
            if n_chosen == 0:
                why_n = snprintf(why, 128, b"nothing in stock goes with this item right now")
            else:
                why_n = snprintf(why, 128, b"no promotion covers these items right now: together they cost ")
                why_n += _money(why + why_n, list_price)
            _bytes_field(&w.out, 0x42, why, why_n)
        _bytes_field(&w.out, 0x4A, self.version, len(self.version))
        s = PyUnicode_AsUTF8AndSize(request_id, &why_n)
        _bytes_field(&w.out, 0x52, s, why_n)
        return PyBytes_FromStringAndSize(w.out.p, w.out.n), tuple([pk.reasons[chosen[i]] for i in range(n_chosen)])

    cdef tuple _promotion(self, p):
        """(p, the codes it names, its message, its end, its value and cap as exact
        decimals, its rank after priority and saving), made once per Promotion object
        (the book re-reads its promotions as new objects every few seconds). The codes:
        (min_items, variants, products, categories), or None when an id is one only
        Python can look up."""
        got = self._promotions.get(id(p))
        if got is None or got[0] is not p:
            got = (p, self._coverage(p), self._wire.promotion_message(p).SerializeToString(),
                   self._wire.timestamp(p.ends_at).SerializeToString(),
                   (_decimal_parts(p.value), None if p.cap is None else _decimal_parts(p.cap)),
                   (-p.ends_at.timestamp(), p.id))
            if len(self._promotions) >= 256:
                self._promotions = {}  # replaced whole: another thread may be reading it
            self._promotions[id(p)] = got
        return got

    cdef object _coverage(self, p):
        variants, products = set(), set()
        for item_id in p.item_ids:
            for search, into in ((self.variants, variants), (self.products, products)):
                code = search.find(item_id) if item_id else -1
                if code == -2:
                    return None
                if code >= 0:
                    into.add(code)
        cats = {self.category_index[c] for c in p.categories if c in self.category_index}
        return p.min_items, variants, products, cats

    cdef bint _line_matches(self, tuple cover, int64_t p, int64_t v):
        """recsvc.promotions.promotion_applies for one line: its variant id (the id asked
        for), its product id or its category is named."""
        return (v >= 0 and v in cover[1]) or p in cover[2] or self.product_category[p] in cover[3]

    cdef object _price_bundle(self, Filters* f, str anchor_id, int64_t a, int64_t v, Picks* pk, int* chosen,
                              int n_chosen, list active, now):
        """recsvc.promotions.price_bundle of the anchor and the chosen complements."""
        cdef int i, j
        lines = [self._BundleLine(anchor_id, self.model.product_id_list[a],
                                  self.model.category_names[self.product_category[a]], self._price(f, a, v))]
        for i in range(n_chosen):
            j = chosen[i]
            p, q = pk.products[j], pk.variants[j]
            lines.append(self._BundleLine(str(self.model.variant_ids[q]) if q >= 0 else self.model.product_id_list[p],
                                          self.model.product_id_list[p],
                                          self.model.category_names[self.product_category[p]], self._price(f, p, q)))
        return self._price_lines(active, lines, now)

    cdef object _price_in_cents(self, list promos, list matched, int n_lines, int64_t cents):
        """recsvc.promotions.price_bundle for lines priced in whole cents (`cents` in
        all), in exact integer arithmetic: the best promotion that applies (priority,
        saving, the earliest end, id), its saving capped and rounded half up to cents.
        `promos`: the active promotions as `_promotion` caches them. None when Decimal's
        28 digits could round the product: then Python prices it."""
        best = best_p = None
        saving = 0
        for got, named in zip(promos, matched):
            p = got[0]
            if not named or n_lines < p.min_items:  # promotion_applies
                continue
            s = _saving_cents(p.kind, got[4], cents)
            if s is None:
                return None
            key = (p.priority, s) + got[5]
            if best is None or key > best:
                best, best_p, saving = key, p, s
        total = int(cents)  # Python ints: exact, and `/` is a correctly rounded division
        if best_p is None:
            return self._PricedBundle(total / 100, total / 100, 0.0, None, None)
        return self._PricedBundle(total / 100, (total - saving) / 100, saving / 100, best_p, best_p.ends_at)

    # --- Recommend ----------------------------------------------------------------------
    def recommend(self, request, stock, prices, str request_id):
        """(ItemsResponse bytes, reasons), as recsvc.answers.recommend: a known customer's
        best-scored candidates (the head, else every candidate), then popular products;
        None when Python must answer (NaN scores, many asked categories).

        A neighbourhood is scored by `scores`, which the Python path calls too; the exact
        and per-category universes by the same numpy product as Python; the best are
        chosen as recommend.top_positions does (ties in position order): so the two
        agree to the last bit."""
        cdef int64_t user = -1, j
        cdef int got = 0, i, head, n_c
        cdef int32_t products[MAX_LIMIT]
        cdef int32_t variants[MAX_LIMIT]
        cdef double scores[MAX_LIMIT]
        cdef int reasons[MAX_LIMIT]
        cdef int pos[MAX_LIMIT]
        cdef int32_t var[MAX_LIMIT]
        cdef int32_t cands[3 * MAX_LIMIT]
        cdef double cand_scores[3 * MAX_LIMIT]
        cdef int32_t q, b
        cdef const int32_t[::1] uni
        cdef int64_t top_idx[3 * MAX_LIMIT]
        cdef const double[::1] sv
        cdef _Writer w
        user_id = request.context.user_id if request.HasField("context") else ""
        excluded = []
        if user_id:
            user = self.users.find(user_id)
            if user == -2:
                return None
        if user >= 0:
            for j in range(self.ui_indptr[user], self.ui_indptr[user + 1]):
                b = self.ui_indices[j]
                if not self.repeat_category[self.product_category[b]]:
                    excluded.append(b)
        cdef _Request r = self._parse(request, excluded, None)
        if r is None:
            return None
        self._bind(r, stock, prices)
        cats = [self.category_index[c] for c in request.filter.categories] if request.HasField("filter") else []
        if user >= 0:  # recsvc.answers.recommend._personal, its head path
            size = self.comp_idx.shape[0] if not cats else sum(
                self.cat_pop_indptr[c + 1] - self.cat_pop_indptr[c] for c in cats)
            if size > self.exact_max:
                universe = self._neighbourhood(user, cats)
                score_arr = self.scores(universe, user)
            elif cats:
                universe = np.concatenate([self.model.popular_in(c) for c in cats])
                score_arr = np.asarray(self.item_factors[universe] @ self.user_factors[user], dtype=np.float64)
            else:
                universe = np.arange(self.comp_idx.shape[0], dtype=np.int32)
                score_arr = np.asarray(self.item_factors @ self.user_factors[user], dtype=np.float64)
            head = min(len(universe), 3 * r.limit)
            uni = np.ascontiguousarray(universe, dtype=np.int32)
            sv = np.ascontiguousarray(score_arr, dtype=np.float64)
            if head >= len(universe):
                head = 0  # a universe that small: straight to the exhaustive path
            elif _top(&sv[0], len(sv), head, top_idx) < 0:
                return None  # NaN scores: Python's
            n_c = 0
            for i in range(head):  # a product listed twice keeps its first place and its last score
                q = uni[top_idx[i]]
                for j in range(n_c):  # (Python's dict(zip(products, scores)))
                    if cands[j] == q:
                        cand_scores[j] = sv[top_idx[i]]
                        break
                else:
                    cands[n_c] = q
                    cand_scores[n_c] = sv[top_idx[i]]
                    n_c += 1
            got = self._first(&r.f, cands, n_c, r.limit, pos, var) if head else 0
            if got == r.limit:
                for i in range(got):
                    products[i], variants[i], scores[i] = cands[pos[i]], var[i], cand_scores[pos[i]]
            else:  # the best few did not fill it: every candidate, filtered
                got = self._exhaustive(&r.f, uni, sv, r.limit, products, variants, scores)
                if got < 0:
                    return None
            for i in range(got):
                reasons[i] = 4  # PERSONAL
        if got < r.limit:  # recsvc.answers.recommend._fill_popular
            got = self._popular(&r.f, r.limit, cats, products, variants, scores, reasons, got)
            if got < 0:
                return None
        self._fetch_items(&r.f, products, variants, got)
        w = _Writer()
        _grow(&w.why, 256)
        for i in range(got):
            if reasons[i] == 4:
                self._item(&r.f, &w.out, &w.tmp, products[i], variants[i], scores[i], 4,
                           b"picked for you from your past orders", 36)
                continue
            where = (b"in " + self.model.category_names[self.product_category[products[i]]].encode()) if cats \
                else b"in the shop"
            w.why.n = 0
            _append(&w.why, b"popular ", 8)
            _append(&w.why, where, len(where))
            _append(&w.why, b": bought in ", 12)
            _grow(&w.why, 40)
            w.why.n += _thousands(w.why.p + w.why.n, self.popularity_count[products[i]])
            if self.popularity_count[products[i]] != 1:
                _append(&w.why, b" orders recently", 16)
            else:
                _append(&w.why, b" order recently", 15)
            self._item(&r.f, &w.out, &w.tmp, products[i], variants[i], scores[i], reasons[i], w.why.p, w.why.n)
        return self._finish(&w.out, request_id), tuple([reasons[i] for i in range(got)])

    def scores(self, universe, int64_t user):
        """ALS scores of the products `universe` (int32) for customer `user`, as float64.
        recsvc.answers.recommend scores a customer's neighbourhood with this too, so both
        paths agree to the bit (numpy's BLAS may sum in another order)."""
        cdef const int32_t[::1] uni = np.ascontiguousarray(universe, dtype=np.int32)
        cdef Py_ssize_t n = len(uni), i
        out = np.empty(n, np.float64)
        cdef double[::1] o = out
        if user < 0 or user >= self.f_users.shape[0]:
            raise IndexError(f"user {user} is not in 0..{self.f_users.shape[0] - 1}")
        for i in range(n):
            if uni[i] < 0 or uni[i] >= self.f_items.shape[0]:
                raise IndexError(f"product {uni[i]} is not in 0..{self.f_items.shape[0] - 1}")
        cdef Py_ssize_t k = self.f_items.shape[1], row_bytes = k * sizeof(float), b
        for i in range(n):
            if i + 4 < n:  # the rows are random (the customer's neighbourhood): fetch ahead
                for b in range(0, row_bytes, 64):
                    __builtin_prefetch(<const char*>&self.f_items[uni[i + 4], 0] + b)
            o[i] = _dot(&self.f_items[uni[i], 0], &self.f_users[user, 0], k)
        return out

    cdef object _neighbourhood(self, int64_t user, list cats):
        """recsvc.answers.recommend._neighbourhood, as an int32 array: the head of the
        co-purchase and substitute rows of what the customer bought, plus popular
        products (repeats kept)."""
        cdef int64_t lo = self.ui_indptr[user], hi = min(self.ui_indptr[user + 1], lo + 32), j, c, top
        cdef int K1 = min(self.comp_idx.shape[1], 20), K2 = min(self.subs_idx.shape[1], 20), k
        cdef int32_t x
        cdef Py_ssize_t n = 0, size = (hi - lo) * (K1 + K2)
        heads = []
        for c in (cats or [-1]):  # -1: the whole shop's popular products
            top = min(100, self.cat_pop_indptr[c + 1] - self.cat_pop_indptr[c] if c >= 0
                      else self.popular_order.shape[0])
            heads.append((c, top))
            size += top
        buf = np.empty(size, np.int32)
        cdef int32_t[::1] o = buf
        for j in range(lo, hi):
            for k in range(K1):
                x = self.comp_idx[self.ui_indices[j], k]
                if x >= 0:
                    o[n] = x
                    n += 1
        for j in range(lo, hi):
            for k in range(K2):
                x = self.subs_idx[self.ui_indices[j], k]
                if x >= 0:
                    o[n] = x
                    n += 1
        for c, top in heads:
            for j in range(top):
                o[n] = self.category_popular[self.cat_pop_indptr[c] + j] if c >= 0 else self.popular_order[j]
                n += 1
        return buf[:n]

    cdef int _exhaustive(self, Filters* f, const int32_t[::1] uni, const double[::1] sv, int limit,
                         int32_t* products, int32_t* variants, double* scores) except -2:
        """recsvc.answers.recommend._personal's exhaustive path: every candidate once (its
        first score), filtered, the best `limit` by score, ties by product code; -1: NaN."""
        cdef Py_ssize_t n = uni.shape[0], i, g, n_kept = 0
        cdef bint ordered = True
        cdef int32_t v
        cdef int got
        cdef Entry* e = <Entry*>malloc(max(1, n) * sizeof(Entry))
        cdef int32_t* kept_p = <int32_t*>malloc(max(1, n) * sizeof(int32_t))
        cdef int32_t* kept_v = <int32_t*>malloc(max(1, n) * sizeof(int32_t))
        cdef double* kept_s = <double*>malloc(max(1, n) * sizeof(double))
        cdef int64_t top[MAX_LIMIT]
        if e == NULL or kept_p == NULL or kept_v == NULL or kept_s == NULL:
            free(e)
            free(kept_p)
            free(kept_v)
            free(kept_s)
            raise MemoryError()
        try:
            for i in range(n):
                e[i].code, e[i].pos = uni[i], <int32_t>i
                if i and uni[i] <= uni[i - 1]:
                    ordered = False
            if not ordered:  # np.unique(return_index=True): by product, first place first
                qsort(e, n, sizeof(Entry), _cmp_entry)
            g = 0
            while g < n:
                v = self._passes(f, e[g].code)
                if v != -2:
                    kept_p[n_kept], kept_v[n_kept], kept_s[n_kept] = e[g].code, v, sv[e[g].pos]
                    n_kept += 1
                i = g + 1
                while i < n and e[i].code == e[g].code:
                    i += 1
                g = i
            got = _top(kept_s, n_kept, min(limit, n_kept), top)
            if got < 0:
                return -1
            for i in range(got):
                products[i], variants[i], scores[i] = kept_p[top[i]], kept_v[top[i]], kept_s[top[i]]
            return got
        finally:
            free(e)
            free(kept_p)
            free(kept_v)
            free(kept_s)

    cdef int _popular(self, Filters* f, int limit, list cats, int32_t* products, int32_t* variants, double* scores,
                      int* reasons, int n_start) except -2:
        """recsvc.answers.recommend._fill_popular: popular products under the filters after
        the `n_start` personal ones, ranked below them: overall, or each asked category's
        head merged by popularity; -1: Python must answer."""
        cdef int got = n_start, n = 0, i
        cdef int64_t lo, hi, j, walk = limit  # Scope.walk's count: need + the products taken
        cdef int32_t q, qv
        cdef Merged found[SCAN_CAP]
        cdef int passed
        cdef double floor = scores[n_start - 1] if n_start else 0, sc, cand
        cdef bint has_floor = n_start > 0
        if not cats:
            for j in range(min(<int64_t>self.popular_order.shape[0], SCAN_CAP)):
                if n >= walk:
                    break
                q = self.popular_order[j]
                qv = self._passes(f, q)
                if qv != -2:
                    found[n].code, found[n].variant = q, qv
                    n += 1
        else:
            if len(cats) * walk > SCAN_CAP:
                return -1
            for c in cats:
                lo = self.cat_pop_indptr[c]
                hi = min(self.cat_pop_indptr[c + 1], lo + SCAN_CAP)
                passed = 0
                j = lo
                while j < hi and passed < walk:
                    q = self.category_popular[j]
                    j += 1
                    qv = self._passes(f, q)
                    if qv != -2:
                        found[n].code, found[n].variant = q, qv
                        found[n].total, found[n].order = <double>self.popularity[q], n  # ties: as found
                        if found[n].total != found[n].total:
                            return -1  # NaN: Python's sort order is its own
                        n += 1
                        passed += 1
            qsort(found, n, sizeof(Merged), _cmp_merged)  # most popular first
        for i in range(n):
            if got >= limit:
                break
            if _in(products, got, found[i].code):
                continue
            sc = <double>self.popularity[found[i].code]
            if has_floor:  # after personal items: each fill ranks below the one before
                cand = floor - fabs(floor) * 0.01 - 1e-6
                if cand < sc:
                    sc = cand
                floor = sc
            products[got], variants[got], scores[got] = found[i].code, found[i].variant, sc
            reasons[got] = REASON_POPULAR
            got += 1
        return got


cdef inline double _dot(const float* a, const float* b, Py_ssize_t n) noexcept:
    """sum(a * b) in float32 over 8 lanes, then the lanes pairwise: a fixed order (the
    same bits on every call), and independent lanes the compiler can vectorise."""
    cdef float acc[8]
    cdef Py_ssize_t k, j
    for j in range(8):
        acc[j] = 0
    k = 0
    while k + 8 <= n:
        for j in range(8):
            acc[j] += a[k + j] * b[k + j]
        k += 8
    for j in range(n - k):
        acc[j] += a[k + j] * b[k + j]
    return <double>(((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7])))


cdef int _top(const double* sc, Py_ssize_t n, int head, int64_t* out) noexcept:
    """Positions of the `head` highest scores, best first, ties in position order
    (recsvc.answers.recommend.top_positions); -1 on NaN."""
    cdef Py_ssize_t i
    cdef int m = 0, j
    cdef double x
    for i in range(n):
        x = sc[i]
        if x != x:
            return -1
        if m == head and not x > sc[out[m - 1]]:
            continue  # not above the worst kept (a tie loses to the earlier position)
        j = m if m < head else head - 1
        while j > 0 and x > sc[out[j - 1]]:
            out[j] = out[j - 1]
            j -= 1
        out[j] = i
        if m < head:
            m += 1
    return m


cdef inline int _append(Buf* b, const char* s, Py_ssize_t n) except -1:
    _grow(b, n)
    memcpy(b.p + b.n, s, n)
    b.n += n
    return 0


cdef Py_ssize_t _said_together(char* why, int64_t support) noexcept:
    """recsvc.answers.complements._said_together_one, into a buffer of >= 64 bytes."""
    cdef Py_ssize_t n
    if support <= 0:
        return snprintf(why, 64, b"often bought together")
    memcpy(why, b"bought together in ", 19)
    n = 19 + _thousands(why + 19, support)
    if support != 1:
        memcpy(why + n, b" orders", 7)
        return n + 7
    memcpy(why + n, b" order", 6)
    return n + 6


cdef bint _cents_of(double price, int64_t* cents) noexcept:
    """Whole cents of a price that Decimal(str(price)) holds exactly as cents (two
    decimals or fewer, as shop prices are); False for anything else."""
    cdef double k
    if not (price >= 0 and price < 1e13):
        return False
    k = <double>(<int64_t>(price * 100.0 + 0.5))
    if k / 100.0 != price:
        return False
    cents[0] = <int64_t>k
    return True


cdef object _saving_cents(str kind, tuple decimals, int64_t cents):
    """recsvc.promotions.promotion_saving in cents, as a Python int; None: Python's.
    `decimals`: the promotion's value and cap (or None) as `_decimal_parts`."""
    value, cap = decimals
    if kind == "percent":  # list * value / 100, in cents: cents * V / 10**(d + 2)
        if cents * value[0] >= 10 ** 27:
            return None
        num, den = cents * value[0], 10 ** (value[1] + 2)
    elif kind == "amount":
        num, den = value[0] * 100, 10 ** value[1]
    else:
        return None
    if cap is not None and cap[0] * 100 * den < num * 10 ** cap[1]:
        num, den = cap[0] * 100, 10 ** cap[1]
    if num > cents * den:  # never more than the list price
        num, den = cents, 1
    return (2 * num + den) // (2 * den)  # ROUND_HALF_UP, for a saving >= 0


cdef tuple _decimal_parts(double x):
    """Decimal(str(x)) as (V, d) with V / 10**d == it, d >= 0 (recsvc.promotions._money)."""
    t = Decimal(str(x)).as_tuple()
    v = int("".join(map(str, t.digits)) or "0")
    if t.exponent >= 0:
        return v * 10 ** t.exponent, 0
    return v, -t.exponent


cdef Py_ssize_t _money(char* out, double x) noexcept:
    """f"{x:,.2f}" (recsvc.answers.common.money) for x >= 0."""
    cdef char digits[64]
    cdef Py_ssize_t n = snprintf(digits, 64, b"%.2f", x), int_n = n - 3, i, j = 0
    for i in range(int_n):
        out[j] = digits[i]
        j += 1
        if (int_n - 1 - i) % 3 == 0 and i != int_n - 1:
            out[j] = b','
            j += 1
    memcpy(out + j, digits + int_n, 3)
    return j + 3

# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""The fast lead checks in C: the same functions and answers as ``_plain.py`` (see there).

Built by ``pip install`` when a C compiler is present (``hatch_build.py``); without it, or with
``UPSCALE_ASYNC_NO_EXTENSIONS=1``, ``_plain.py`` runs instead. An exact ``dict`` is checked here
in C; a dict subclass goes through ``_plain.plain_leads`` (its own ``__getitem__`` may differ).
"""

from cpython.object cimport PyObject

from functools import update_wrapper

from upscale_async._spec._plain import plain_leads as _py_plain_leads


cdef extern from *:
    """
    /* 1 when every character of s is whitespace as str.isspace() sees it (s non-empty). */
    static int upscale_all_space(PyObject *s) {
        Py_ssize_t i, n;
        int kind;
        const void *data;
        if (PyUnicode_IS_COMPACT_ASCII(s)) {  /* the usual case: a first byte that is no space */
            unsigned char c = *(const unsigned char *)(((PyASCIIObject *)s) + 1);
            if (c > ' ') return 0;
        }
    #if PY_VERSION_HEX < 0x030C0000
        if (PyUnicode_READY(s) < 0) return -1;
    #endif
        n = PyUnicode_GET_LENGTH(s);
        kind = PyUnicode_KIND(s);
        data = PyUnicode_DATA(s);
        if (PyUnicode_IS_ASCII(s)) {
            const unsigned char *p = (const unsigned char *)data;
            for (i = 0; i < n; i++) {
                unsigned char c = p[i];
                if (!(c == ' ' || (c >= 9 && c <= 13) || (c >= 28 && c <= 31))) return 0;
            }
            return 1;
        }
        for (i = 0; i < n; i++) {
            if (!Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, i))) return 0;
        }
        return 1;
    }

    /* 1 when each of the n bytes (all ASCII, < 0x80) is '!' to '~' (0x21 to 0x7e), 8 at a
       time: with every byte below 0x80 no per-byte sum below carries into the next byte, so
       a byte is >= 0x21 when it + 0x5f has its top bit set, and is 0x7f when it + 0x01 has. */
    static int upscale_ascii_graphic(const unsigned char *p, Py_ssize_t n) {
        const uint64_t ones = 0x0101010101010101ULL, tops = 0x8080808080808080ULL;
        uint64_t w;
        Py_ssize_t i = 0;
        if (n >= 8) {
            for (; i + 8 <= n; i += 8) {
                memcpy(&w, p + i, 8);
                if (((w + 0x5f * ones) & ~(w + ones) & tops) != tops) return 0;
            }
            if (i < n) {  /* the last 8 bytes, overlapping the word before */
                memcpy(&w, p + n - 8, 8);
                if (((w + 0x5f * ones) & ~(w + ones) & tops) != tops) return 0;
            }
            return 1;
        }
        for (; i < n; i++) {
            if (p[i] < 0x21 || p[i] > 0x7e) return 0;
        }
        return 1;
    }

    /* 1 when s is a plain URL (_plain._PLAIN_URL, or _plain._plain_unicode_url when it is not
       ASCII): http:// or https://, then printable characters but no space, not '/', '?' or
       '#' first. */
    static int upscale_plain_url(PyObject *s) {
        Py_ssize_t i, n, start;
        int kind;
        const void *data;
        Py_UCS4 c;
        const char *scheme;
    #if PY_VERSION_HEX < 0x030C0000
        if (PyUnicode_READY(s) < 0) return -1;
    #endif
        n = PyUnicode_GET_LENGTH(s);
        if (PyUnicode_IS_COMPACT_ASCII(s)) {  /* the usual case: bytes compared as bytes */
            const unsigned char *p = (const unsigned char *)(((PyASCIIObject *)s) + 1);
            if (n > 8 && memcmp(p, "https://", 8) == 0) {
                start = 8;
            } else if (n > 7 && memcmp(p, "http://", 7) == 0) {
                start = 7;
            } else {
                return 0;
            }
            if (p[start] == '/' || p[start] == '?' || p[start] == '#') return 0;
            return upscale_ascii_graphic(p + start, n - start);
        }
        kind = PyUnicode_KIND(s);
        data = PyUnicode_DATA(s);
        /* "https://" when the fifth character is 's' (and there is room), else "http://" */
        if (n >= 8 && PyUnicode_READ(kind, data, 4) == 's') {
            scheme = "https://";
            start = 8;
        } else {
            scheme = "http://";
            start = 7;
        }
        if (n <= start) return 0;
        for (i = 0; i < start; i++) {
            if (PyUnicode_READ(kind, data, i) != (Py_UCS4)(unsigned char)scheme[i]) return 0;
        }
        c = PyUnicode_READ(kind, data, start);
        if (c == '/' || c == '?' || c == '#') return 0;
        if (PyUnicode_IS_ASCII(s)) {
            return upscale_ascii_graphic((const unsigned char *)data + start, n - start);
        }
        for (i = 0; i < n; i++) {  /* str.isprintable() covers the scheme too */
            c = PyUnicode_READ(kind, data, i);
            if (c < 0x80) {  /* ASCII: printable and not a space is '!' to '~' */
                if (c < 0x21 || c > 0x7e) return 0;
            } else if (!Py_UNICODE_ISPRINTABLE(c)) {
                return 0;
            }
        }
        return 1;
    }

    /* Calling a class: the vectorcall a class may have of its own (a Lead's, set below). */
    static void upscale_set_type_vectorcall(PyObject *cls, void *f) {
        ((PyTypeObject *)cls)->tp_vectorcall = (vectorcallfunc)f;
    }
    static int upscale_type_vectorcall_is(PyObject *cls, void *f) {
        return ((PyTypeObject *)cls)->tp_vectorcall == (vectorcallfunc)f;
    }
    /* type.__call__(cls, *args, **kwargs) itself: __new__ then __init__, never a vectorcall. */
    static PyObject *upscale_type_call(PyObject *cls, PyObject *args, PyObject *kwargs) {
        return PyType_Type.tp_call(cls, args, kwargs);
    }
    /* True when the instances of cls are made by object.__new__ (no __new__ of its own). */
    static int upscale_default_new(PyObject *cls) {
        return ((PyTypeObject *)cls)->tp_new == PyBaseObject_Type.tp_new;
    }
    /* A new, empty instance of cls, as object.__new__(cls) makes it. */
    static PyObject *upscale_alloc(PyObject *cls) {
        return ((PyTypeObject *)cls)->tp_alloc((PyTypeObject *)cls, 0);
    }
    /* cls's own namespace (what cls.__dict__ shows), borrowed. */
    static PyObject *upscale_type_dict(PyObject *cls) {
        return ((PyTypeObject *)cls)->tp_dict;
    }

    #include "structmember.h"

    /* The offset of a writable object slot of cls, from its member descriptor; -1 otherwise. */
    static Py_ssize_t upscale_slot_offset(PyObject *descr, PyObject *cls) {
        PyMemberDef *m;
        if (Py_TYPE(descr) != &PyMemberDescr_Type) return -1;
        if ((PyObject *)((PyDescrObject *)descr)->d_type != cls) return -1;
        m = ((PyMemberDescrObject *)descr)->d_member;
        if (m->type != T_OBJECT_EX || (m->flags & READONLY)) return -1;
        return m->offset;
    }

    /* What the slot's member descriptor does on set (PyMember_SetOne), without finding it. */
    static void upscale_set_slot(PyObject *o, Py_ssize_t offset, PyObject *v) {
        PyObject **slot = (PyObject **)((char *)o + offset);
        PyObject *old = *slot;
        Py_INCREF(v);
        *slot = v;
        Py_XDECREF(old);
    }
    """
    int upscale_all_space(PyObject *s) except -1
    int upscale_plain_url(PyObject *s) except -1
    Py_ssize_t upscale_slot_offset(PyObject *descr, PyObject *cls)
    void upscale_set_slot(object o, Py_ssize_t offset, object v)
    void upscale_set_type_vectorcall(object cls, void *f)
    int upscale_type_vectorcall_is(object cls, void *f)
    object upscale_type_call(object cls, object args, object kwargs)
    int upscale_default_new(PyObject *cls)
    object upscale_alloc(PyObject *cls)
    PyObject *upscale_type_dict(PyObject *cls)
    Py_ssize_t PyVectorcall_NARGS(size_t nargsf)
    int PyUnicode_Compare(PyObject *a, PyObject *b) except? -1
    Py_ssize_t PyTuple_GET_SIZE(PyObject *t)
    PyObject* PyDict_GetItemWithError(object d, object key) except? NULL
    Py_ssize_t PyDict_Size(object d) except -1
    bint PyDict_CheckExact(object o)
    bint PyUnicode_CheckExact(PyObject *o)
    Py_ssize_t PyUnicode_GET_LENGTH(PyObject *o)
    int PyObject_GenericSetAttr(object o, object name, object value) except -1
    int PyDict_Next(object d, Py_ssize_t *pos, PyObject **key, PyObject **value)
    PyObject *PyTuple_GET_ITEM(PyObject *t, Py_ssize_t i)
    bint PyList_CheckExact(object o)
    int PySet_Contains(object s, object key) except -1
    int PySet_Add(object s, object key) except -1
    int PySet_Discard(object s, object key) except -1
    Py_ssize_t PySet_GET_SIZE(object s)


cdef str _ID = "automation_tool_lead_id"
cdef str _LINKEDIN = "lead_linkedin"
cdef str _COMPANY = "lead_company"
cdef str _FIRST = "first_name"
cdef str _LAST = "last_name"
cdef str _WEBSITE = "lead_company_website_url"
cdef str _SPECIFIED = "lead_specified_url"
cdef str _WIRE = "_wire"
cdef str _EXTRA = "extra"
cdef str _RAW = "raw"
cdef str _PROSPECT = "external_prospect_id"
cdef object _MISSING = object()  # a keyword not given to Lead.__init__


cdef inline int _text(PyObject *v) except -1:
    """1 for a non-blank exact str."""
    if v == NULL or not PyUnicode_CheckExact(v) or PyUnicode_GET_LENGTH(v) == 0:
        return 0
    return 1 - upscale_all_space(v)


cdef inline int _url(PyObject *v) except -1:
    """1 for a plain URL (an exact str)."""
    if v == NULL or not PyUnicode_CheckExact(v):
        return 0
    return upscale_plain_url(v)


cdef inline int _optional_url(PyObject *v) except -1:
    if v == NULL or v == <PyObject *>None:
        return 1
    return _url(v)

#: The lead fields, in the documented order (``Lead.to_wire``): the keys ``_plain_by_keys`` knows.
cdef tuple _FIELDS = (_ID, _LINKEDIN, _COMPANY, _FIRST, _LAST, _WEBSITE, _SPECIFIED)
#: A wire dict with every field None, in that order: what ``_wire_of`` copies.
cdef dict _WIRE_TEMPLATE = dict.fromkeys(_FIELDS)


cdef int _plain_by_keys(object lead) except -2:
    """``_plain_dict`` in one pass over the entries, when every key is one of ``_FIELDS``
    itself (the same object, as a literal or keyword key is): 1 or 0; -1 when a key is not
    (then the keys are looked up, as equal strings may be different objects)."""
    cdef PyObject *values[7]
    cdef PyObject *key
    cdef PyObject *value
    cdef Py_ssize_t pos = 0, i = 0, j
    cdef PyObject *fields = <PyObject *>_FIELDS
    values[5] = NULL
    values[6] = NULL
    cdef int mask = 0
    while PyDict_Next(lead, &pos, &key, &value):
        # The documented order first; else any field.
        if i < 7 and key == PyTuple_GET_ITEM(fields, i):
            j = i
        else:
            j = 0
            while j < 7 and key != PyTuple_GET_ITEM(fields, j):
                j += 1
            if j == 7:
                return -1
        values[j] = value
        mask |= 1 << j
        i += 1
    if mask & 0x1f != 0x1f:
        return 0  # a required field missing
    if not (
        _text(values[0])
        and _text(values[2])
        and _text(values[3])
        and _text(values[4])
        and _url(values[1])
        and _optional_url(values[5])
        and _optional_url(values[6])
    ):
        return 0
    return 1


cdef int _plain_dict(object lead) except -1:
    """1 when the exact dict ``lead`` is plain (``_plain.plain_leads``), else 0."""
    cdef Py_ssize_t n = PyDict_Size(lead)
    cdef PyObject *website
    cdef PyObject *specified
    cdef int found
    if n < 5 or n > 7:
        return 0
    found = _plain_by_keys(lead)
    if found >= 0:
        return found
    if not _text(PyDict_GetItemWithError(lead, _ID)):
        return 0
    if not _text(PyDict_GetItemWithError(lead, _COMPANY)):
        return 0
    if not _text(PyDict_GetItemWithError(lead, _FIRST)):
        return 0
    if not _text(PyDict_GetItemWithError(lead, _LAST)):
        return 0
    if not _url(PyDict_GetItemWithError(lead, _LINKEDIN)):
        return 0
    website = PyDict_GetItemWithError(lead, _WEBSITE)
    specified = PyDict_GetItemWithError(lead, _SPECIFIED)
    if 5 + (website != NULL) + (specified != NULL) != n:
        return 0  # a key that is not a lead field
    return _optional_url(website) and _optional_url(specified)


cdef int _plain(object lead) except -1:
    if PyDict_CheckExact(lead):
        return _plain_dict(lead)
    if isinstance(lead, dict):
        return 1 if _py_plain_leads((lead,))[0] else 0
    return 0


def plain_leads(leads):
    """For each lead, True when it is plain (so surely valid); False means "look closer"."""
    cdef list out = []
    for lead in leads:
        out.append(True if _plain(lead) else False)
    return out


def chunk_wire(leads, type trusted):
    """The wire dicts and lead ids of a chunk whose every lead is plain, else None."""
    cdef list wires = []
    cdef list ids = []
    for lead in leads:
        if type(lead) is trusted:
            wire = getattr(lead, _WIRE)
            if wire is None:
                return None
            wires.append(wire)
            ids.append(wire[_ID])
        elif _plain(lead):
            wires.append(lead)
            ids.append(<object>PyDict_GetItemWithError(lead, _ID) if PyDict_CheckExact(lead)
                       else lead[_ID])
        else:
            return None
    return wires, ids


def plain_wire(lead_id, linkedin, company, first, last, website, specified):
    """The wire dict of a ``Lead`` with these fields when they are plain, else None."""
    return _wire_of(lead_id, linkedin, company, first, last, website, specified)


cdef inline object _wire_of(lead_id, linkedin, company, first, last, website, specified):
    """The wire dict of these fields when they are plain (as ``_plain_dict`` finds), else None."""
    cdef PyObject *w = <PyObject *>website
    cdef PyObject *s = <PyObject *>specified
    if not (
        _text(<PyObject *>lead_id)
        and _text(<PyObject *>company)
        and _text(<PyObject *>first)
        and _text(<PyObject *>last)
        and _url(<PyObject *>linkedin)
        and _optional_url(w)
        and _optional_url(s)
    ):
        return None
    # A copy of the template shares its key table (no resize, no key hashed), then each value
    # is replaced: about half the cost of a new seven-key dict.
    cdef dict wire = _WIRE_TEMPLATE.copy()
    wire[_ID] = lead_id
    wire[_LINKEDIN] = linkedin
    wire[_COMPANY] = company
    wire[_FIRST] = first
    wire[_LAST] = last
    wire[_WEBSITE] = website
    wire[_SPECIFIED] = specified
    return wire


def init_lead(lead, lead_id, linkedin, company, first, last, website, specified, extra):
    """Set a new (frozen) ``Lead``'s fields and ``_wire``: its wire dict when it is plain."""
    PyObject_GenericSetAttr(lead, _ID, lead_id)
    PyObject_GenericSetAttr(lead, _LINKEDIN, linkedin)
    PyObject_GenericSetAttr(lead, _COMPANY, company)
    PyObject_GenericSetAttr(lead, _FIRST, first)
    PyObject_GenericSetAttr(lead, _LAST, last)
    PyObject_GenericSetAttr(lead, _WEBSITE, website)
    PyObject_GenericSetAttr(lead, _SPECIFIED, specified)
    PyObject_GenericSetAttr(lead, _EXTRA, extra)
    wire = None
    if not extra:
        wire = _wire_of(lead_id, linkedin, company, first, last, website, specified)
    PyObject_GenericSetAttr(lead, _WIRE, wire)


#: ``Lead``'s slots in the order ``bind_lead_init`` sets them.
cdef tuple _LEAD_SLOTS = (_ID, _LINKEDIN, _COMPANY, _FIRST, _LAST, _WEBSITE, _SPECIFIED, _EXTRA, _WIRE)


cdef class _LeadFill:
    """How a new Lead of one class is filled, by its C ``__init__`` and by ``_lead_call``."""

    cdef Py_ssize_t offsets[9]  # its slots' offsets, in ``_LEAD_SLOTS`` order
    cdef object no_extra, freeze_extra, look_closer

    cdef fill(self, lead, lead_id, linkedin, company, first, last, website, specified, extra):
        """Freeze ``extra`` (unless it is ``no_extra``), set the slots and ``_wire`` (the wire
        dict when the lead is plain), and look closer when it is not."""
        if extra is not self.no_extra:
            extra = self.freeze_extra(extra)
        wire = None
        if not extra:
            wire = _wire_of(lead_id, linkedin, company, first, last, website, specified)
        upscale_set_slot(lead, self.offsets[0], lead_id)
        upscale_set_slot(lead, self.offsets[1], linkedin)
        upscale_set_slot(lead, self.offsets[2], company)
        upscale_set_slot(lead, self.offsets[3], first)
        upscale_set_slot(lead, self.offsets[4], last)
        upscale_set_slot(lead, self.offsets[5], website)
        upscale_set_slot(lead, self.offsets[6], specified)
        upscale_set_slot(lead, self.offsets[7], extra)
        upscale_set_slot(lead, self.offsets[8], wire)
        if wire is None:
            self.look_closer(lead)


# Long: the C __init__ and its fallback to the reference kept together (one closure).
def bind_lead_init(type cls, reference, no_extra, freeze_extra, look_closer):
    """``cls.__init__`` in C, doing what ``reference`` (the Python ``Lead.__init__``) does.

    A call it does not handle itself (positional arguments, a missing or unknown keyword, an
    instance of a subclass) goes to ``reference``, so its errors are the same. Otherwise: ``extra`` is frozen by
    ``freeze_extra`` (unless it is ``no_extra``), the fields are set in the slots directly,
    ``_wire`` is the wire dict when the lead is plain, and ``look_closer(lead)`` runs when it
    is not (it sets ``_wire`` when the exact rules find the lead valid).

    The first class bound this way is also called in C (``_lead_call``, its type's vectorcall):
    ``Lead(...)`` with keywords then does this work without an argument tuple, a keyword dict
    or an ``__init__`` lookup.
    """
    cdef _LeadFill filler = _LeadFill()
    filler.no_extra, filler.freeze_extra, filler.look_closer = no_extra, freeze_extra, look_closer
    cdef bint direct = True
    cdef Py_ssize_t i
    for i in range(9):
        descr = cls.__dict__.get(_LEAD_SLOTS[i])
        filler.offsets[i] = (
            -1 if descr is None else upscale_slot_offset(<PyObject *>descr, <PyObject *>cls)
        )
        if filler.offsets[i] < 0:
            direct = False

    def __init__(
        self,
        *args,
        automation_tool_lead_id=_MISSING,
        lead_linkedin=_MISSING,
        lead_company=_MISSING,
        first_name=_MISSING,
        last_name=_MISSING,
        lead_company_website_url=_MISSING,
        lead_specified_url=_MISSING,
        extra=_MISSING,
        **unknown,
    ):
        if (
            args
            or unknown
            or not direct
            or type(self) is not cls
            or automation_tool_lead_id is _MISSING
            or lead_linkedin is _MISSING
            or lead_company is _MISSING
            or first_name is _MISSING
            or last_name is _MISSING
        ):  # the reference's own TypeError, or the same work in Python
            given = {
                name: value
                for name, value in (
                    (_ID, automation_tool_lead_id),
                    (_LINKEDIN, lead_linkedin),
                    (_COMPANY, lead_company),
                    (_FIRST, first_name),
                    (_LAST, last_name),
                    (_WEBSITE, lead_company_website_url),
                    (_SPECIFIED, lead_specified_url),
                    (_EXTRA, extra),
                )
                if value is not _MISSING
            }
            reference(self, *args, **given, **unknown)
            return
        if lead_company_website_url is _MISSING:
            lead_company_website_url = None
        if lead_specified_url is _MISSING:
            lead_specified_url = None
        if extra is _MISSING:
            extra = no_extra
        filler.fill(
            self, automation_tool_lead_id, lead_linkedin, lead_company, first_name, last_name,
            lead_company_website_url, lead_specified_url, extra,
        )

    bound = update_wrapper(__init__, reference)
    global _call_cls, _call_init, _call_fill
    if direct and _call_cls is None:  # the first binding (Lead's own) gets the fast call
        _call_cls, _call_init, _call_fill = cls, bound, filler
        upscale_set_type_vectorcall(cls, <void *>_lead_call)
    return bound


def has_fast_call(type cls):
    """True when calling ``cls`` builds it with ``_lead_call`` (the compiled ``Lead(...)``)."""
    return bool(upscale_type_vectorcall_is(cls, <void *>_lead_call))


# What ``_lead_call`` builds with: set once, by the first ``bind_lead_init`` that can.
cdef object _call_cls = None
cdef object _call_init = None  # the class's __init__ then: when replaced, calls go the usual way
cdef _LeadFill _call_fill = None  # and how it fills a Lead
#: The keywords ``_lead_call`` takes: the fields, in ``_LEAD_SLOTS`` order, then ``extra``.
cdef tuple _KEYWORDS = (_ID, _LINKEDIN, _COMPANY, _FIRST, _LAST, _WEBSITE, _SPECIFIED, _EXTRA)
cdef str _INIT = "__init__"


cdef object _usual_call(PyObject *cls, PyObject **args, Py_ssize_t nargs, PyObject *kwnames):
    """``type.__call__(cls, *args, **kwargs)`` for a vectorcall's arguments."""
    cdef Py_ssize_t i, nkw = 0 if kwnames == NULL else PyTuple_GET_SIZE(kwnames)
    positional = tuple([<object>args[i] for i in range(nargs)])
    keywords = {<object>PyTuple_GET_ITEM(kwnames, i): <object>args[nargs + i] for i in range(nkw)}
    return upscale_type_call(<object>cls, positional, keywords)


cdef inline Py_ssize_t _keyword(PyObject *name, Py_ssize_t guess) except -1:
    """The index of ``name`` in ``_KEYWORDS`` (``guess`` tried first), or 8 when not there."""
    cdef PyObject *keywords = <PyObject *>_KEYWORDS
    cdef Py_ssize_t j
    if guess < 8 and name == PyTuple_GET_ITEM(keywords, guess):
        return guess
    for j in range(8):
        if name == PyTuple_GET_ITEM(keywords, j):
            return j
    for j in range(8):  # an equal string that is another object (a parsed header, say)
        if PyUnicode_Compare(name, PyTuple_GET_ITEM(keywords, j)) == 0:
            return j
    return 8


# Long: every check that sends a call the usual way, then the same work as the C __init__.
cdef object _lead_call(PyObject *cls, PyObject **args, size_t nargsf, PyObject *kwnames):
    """``Lead(...)`` with keywords only: what ``type.__call__`` and the C ``__init__`` do, in
    one C call (no argument tuple, keyword dict or ``__init__`` lookup). Any other call
    (positional arguments, a keyword missing or unknown, a subclass, an ``__init__`` or
    ``__new__`` replaced since) goes the usual way, so its errors are the same."""
    cdef Py_ssize_t nargs = PyVectorcall_NARGS(nargsf), nkw, i, j
    cdef PyObject *values[8]
    if (
        cls != <PyObject *>_call_cls
        or nargs != 0
        or kwnames == NULL
        or not upscale_default_new(cls)
        or PyDict_GetItemWithError(<object>upscale_type_dict(cls), _INIT) != <PyObject *>_call_init
    ):
        return _usual_call(cls, args, nargs, kwnames)
    for j in range(8):
        values[j] = NULL
    nkw = PyTuple_GET_SIZE(kwnames)
    for i in range(nkw):
        j = _keyword(PyTuple_GET_ITEM(kwnames, i), i)
        if j == 8 or values[j] != NULL:
            return _usual_call(cls, args, nargs, kwnames)
        values[j] = args[nargs + i]
    if (
        values[0] == NULL or values[1] == NULL or values[2] == NULL or values[3] == NULL
        or values[4] == NULL
    ):
        return _usual_call(cls, args, nargs, kwnames)
    lead_id, linkedin, company = <object>values[0], <object>values[1], <object>values[2]
    first, last = <object>values[3], <object>values[4]
    website = None if values[5] == NULL else <object>values[5]
    specified = None if values[6] == NULL else <object>values[6]
    extra = _call_fill.no_extra if values[7] == NULL else <object>values[7]
    self = upscale_alloc(cls)
    _call_fill.fill(self, lead_id, linkedin, company, first, last, website, specified, extra)
    return self


def wrap_results(list leads_data, type cls):
    """Each lead result of a retrieve answer wrapped in ``cls`` (its ``raw``), if all are plain."""
    cdef Py_ssize_t pos
    cdef PyObject *key
    cdef PyObject *value
    cdef PyObject *pid
    for data in leads_data:
        if not PyDict_CheckExact(data):
            return None
        pos = 0
        while PyDict_Next(data, &pos, &key, &value):
            if value != <PyObject *>None and not PyUnicode_CheckExact(value):
                return None
        pid = PyDict_GetItemWithError(data, _PROSPECT)
        if pid == NULL or not PyUnicode_CheckExact(pid):
            return None
    cdef list out = []
    cdef Py_ssize_t offset = -1
    descr = cls.__dict__.get(_RAW)
    if descr is not None and upscale_default_new(<PyObject *>cls):
        offset = upscale_slot_offset(<PyObject *>descr, <PyObject *>cls)
    if offset >= 0:  # what object.__new__ and the slot's setter do, without the lookups
        for data in leads_data:
            wrapped = upscale_alloc(<PyObject *>cls)
            upscale_set_slot(wrapped, offset, data)
            out.append(wrapped)
        return tuple(out)
    for data in leads_data:
        wrapped = cls.__new__(cls)
        PyObject_GenericSetAttr(wrapped, _RAW, data)
        out.append(wrapped)
    return tuple(out)


def add_new_ids(list ids, set seen):
    """Add every id to ``seen`` when none is in it and none repeats (True); else change nothing."""
    cdef Py_ssize_t i, j, size, n = len(ids)
    for i in range(n):
        size = PySet_GET_SIZE(seen)
        PySet_Add(seen, ids[i])  # one lookup: the set did not grow when the id was in it
        if PySet_GET_SIZE(seen) == size:  # seen before, or earlier in this chunk: undo
            for j in range(i):
                PySet_Discard(seen, ids[j])
            return False
    return True

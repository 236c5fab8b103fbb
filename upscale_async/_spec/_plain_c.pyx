# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""The fast lead checks in C: the same functions and answers as ``_plain.py`` (see there).

Built by ``pip install`` when a C compiler is present (``hatch_build.py``); without it, or with
``UPSCALE_ASYNC_NO_EXTENSIONS=1``, ``_plain.py`` runs instead. An exact ``dict`` is checked here
in C; a dict subclass goes through ``_plain.plain_leads`` (its own ``__getitem__`` may differ).
"""

from cpython.object cimport PyObject

from upscale_async._spec._plain import plain_leads as _py_plain_leads


cdef extern from *:
    """
    /* 1 when every character of s is whitespace as str.isspace() sees it (s non-empty). */
    static int upscale_all_space(PyObject *s) {
        Py_ssize_t i, n;
        int kind;
        const void *data;
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
            const unsigned char *p = (const unsigned char *)data;
            for (i = start; i < n; i++) {
                unsigned char a = p[i];
                if (a < 0x21 || a > 0x7e) return 0;
            }
            return 1;
        }
        for (i = 0; i < n; i++) {  /* str.isprintable() covers the scheme too */
            c = PyUnicode_READ(kind, data, i);
            if (c == ' ' || !Py_UNICODE_ISPRINTABLE(c)) return 0;
        }
        return 1;
    }
    """
    int upscale_all_space(PyObject *s) except -1
    int upscale_plain_url(PyObject *s) except -1
    PyObject* PyDict_GetItemWithError(object d, object key) except? NULL
    Py_ssize_t PyDict_Size(object d) except -1
    bint PyDict_CheckExact(object o)
    bint PyUnicode_CheckExact(PyObject *o)
    Py_ssize_t PyUnicode_GET_LENGTH(PyObject *o)
    int PyObject_GenericSetAttr(object o, object name, object value) except -1
    int PyDict_Next(object d, Py_ssize_t *pos, PyObject **key, PyObject **value)
    bint PyList_CheckExact(object o)
    int PySet_Contains(object s, object key) except -1
    int PySet_Add(object s, object key) except -1
    int PySet_Discard(object s, object key) except -1


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


cdef int _plain_dict(object lead) except -1:
    """1 when the exact dict ``lead`` is plain (``_plain.plain_leads``), else 0."""
    cdef Py_ssize_t n = PyDict_Size(lead)
    cdef PyObject *website
    cdef PyObject *specified
    if n < 5 or n > 7:
        return 0
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
    cdef dict wire = {
        _ID: lead_id,
        _LINKEDIN: linkedin,
        _COMPANY: company,
        _FIRST: first,
        _LAST: last,
        _WEBSITE: website,
        _SPECIFIED: specified,
    }
    if _plain_dict(wire):
        return wire
    return None


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
        wire = plain_wire(lead_id, linkedin, company, first, last, website, specified)
    PyObject_GenericSetAttr(lead, _WIRE, wire)


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
    for data in leads_data:
        wrapped = cls.__new__(cls)
        PyObject_GenericSetAttr(wrapped, _RAW, data)
        out.append(wrapped)
    return tuple(out)


def add_new_ids(list ids, set seen):
    """Add every id to ``seen`` when none is in it and none repeats (True); else change nothing."""
    cdef Py_ssize_t i, j, n = len(ids)
    for i in range(n):
        if PySet_Contains(seen, ids[i]):  # seen before, or earlier in this chunk: undo
            for j in range(i):
                PySet_Discard(seen, ids[j])
            return False
        PySet_Add(seen, ids[i])
    return True

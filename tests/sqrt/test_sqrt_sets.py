"""Property tests (hypothesis) for the set algebra, the universal set and metadata propagation (§6.1-6.2, §6.6)."""

from hypothesis import given, settings
from hypothesis import strategies as st
from sqrt_helpers import V, engine, full_call

from relay.meta import (
    DEFAULT_META,
    EMPTY,
    UNIVERSAL,
    Meta,
    ValueWithMeta,
    merge_all,
    set_intersect,
    set_minus,
    set_union,
    set_xor,
)
from relay.sqrt.values import (
    MatcherSet,
    set_contains,
    set_equals,
    set_overlaps,
    set_subset,
    set_superset,
    set_with,
    set_without,
)

ELEMS = st.sampled_from(["a", "b", "c", "d", "e"])
FINITE = st.frozensets(ELEMS, max_size=5)
SETS = st.one_of(st.just(UNIVERSAL), FINITE)
METAS = st.builds(Meta, FINITE, SETS, FINITE)
SETTINGS = settings(max_examples=150, deadline=None)


@SETTINGS
@given(SETS, SETS, SETS)
def test_union_and_intersection_laws(a, b, c):
    assert set_union(a, b) == set_union(b, a)
    assert set_intersect(a, b) == set_intersect(b, a)
    assert set_union(set_union(a, b), c) == set_union(a, set_union(b, c))
    assert set_intersect(set_intersect(a, b), c) == set_intersect(a, set_intersect(b, c))
    assert set_union(a, a) == a and set_intersect(a, a) == a
    # identities and absorbing elements; the universal set is the identity of intersection
    assert set_union(a, EMPTY) == a and set_intersect(a, UNIVERSAL) == a
    assert set_union(a, UNIVERSAL) is UNIVERSAL and set_intersect(a, EMPTY) == EMPTY
    # absorption
    assert set_union(a, set_intersect(a, b)) == a
    assert set_intersect(a, set_union(a, b)) == a


@SETTINGS
@given(FINITE, FINITE, FINITE)
def test_finite_sets_behave_like_python_sets(a, b, c):
    assert set_minus(a, b) == a - b and set_xor(a, b) == a ^ b
    assert set_xor(set_xor(a, b), c) == set_xor(a, set_xor(b, c))
    assert set_intersect(a, set_union(b, c)) == set_union(set_intersect(a, b), set_intersect(a, c))
    assert set_overlaps(a, b) == (not a.isdisjoint(b))
    assert set_subset(a, b) == (a <= b) and set_superset(a, b) == (a >= b) and set_equals(a, b) == (a == b)


@SETTINGS
@given(SETS, st.sampled_from(["a", "z", "*"]))
def test_minus_xor_with_without_and_universal(a, x):
    assert set_minus(a, a) == EMPTY and set_xor(a, a) == EMPTY
    assert set_minus(a, EMPTY) == a and set_xor(a, EMPTY) == a
    assert set_minus(a, UNIVERSAL) == EMPTY
    if a is not UNIVERSAL:
        assert set_minus(UNIVERSAL, a) is UNIVERSAL and set_xor(UNIVERSAL, a) is UNIVERSAL
    assert set_with(UNIVERSAL, x) is UNIVERSAL and set_without(UNIVERSAL, x) is UNIVERSAL
    if a is not UNIVERSAL:
        assert (set_with(a, x) is UNIVERSAL) == (x == "*")
        if x != "*":
            assert set_with(a, x) == a | {x} and set_without(a, x) == a - {x}


@SETTINGS
@given(SETS, SETS)
def test_universal_comparisons(a, b):
    nonempty = lambda s: s is UNIVERSAL or bool(s)  # noqa: E731
    if a is UNIVERSAL:
        assert set_overlaps(a, b) == nonempty(b)
        assert set_subset(a, b) == (b is UNIVERSAL)
        assert set_superset(a, b) is True
    if b is UNIVERSAL:
        assert set_overlaps(a, b) == nonempty(a)
        assert set_subset(a, b) is True
        assert set_superset(a, b) == (a is UNIVERSAL)
    assert set_equals(a, b) == (a == b)
    assert set_contains(UNIVERSAL, 42) and not set_contains(EMPTY, "a")


@SETTINGS
@given(FINITE, FINITE)
def test_matcher_sets_agree_with_plain_sets_on_strings(a, b):
    ms = MatcherSet(b, ())
    assert set_overlaps(a, ms) == set_overlaps(a, b)
    assert set_subset(a, ms) == set_subset(a, b)
    assert set_superset(a, ms) == set_superset(a, b)
    for x in a:
        assert set_contains(ms, x) == (x in b)


@SETTINGS
@given(METAS, METAS, METAS)
def test_meta_merge_is_a_commutative_monoid(m1, m2, m3):
    assert m1.merge(m2) == m2.merge(m1)
    assert m1.merge(m2).merge(m3) == m1.merge(m2.merge(m3))
    assert m1.merge(DEFAULT_META) == m1 and DEFAULT_META.merge(m1) == m1
    merged = m1.merge(m2)
    assert merged.producers == m1.producers | m2.producers
    assert merged.tags == m1.tags | m2.tags
    assert merged.consumers == set_intersect(m1.consumers, m2.consumers)


@SETTINGS
@given(st.lists(METAS, max_size=4))
def test_initial_result_meta_propagates_argument_metas(metas):
    eng = engine(None)
    args = {f"a{i}": ValueWithMeta(i, m) for i, m in enumerate(metas)}
    expected = merge_all(metas).with_tags("__non_executable")
    assert eng.initial_result_meta(args) == expected
    assert engine(None, presets={"enable_non_executable_memory": False}).initial_result_meta(
        args
    ) == merge_all(metas)
    assert engine(None, dual_llm=False).initial_result_meta(args) == DEFAULT_META


OPS = {"|": set_union, "&": set_intersect, "-": set_minus, "^": set_xor}


@SETTINGS
@given(FINITE, FINITE, st.sampled_from(sorted(OPS)), st.sampled_from(["union", "intersect", "minus", "xor"]))
def test_language_set_operators_match_the_algebra(a, b, sym, word):
    lit = "{" + ", ".join(f'"{x}"' for x in sorted(b)) + "}"
    for op, fn in (
        (sym, OPS[sym]),
        (word, {"union": set_union, "intersect": set_intersect, "minus": set_minus, "xor": set_xor}[word]),
    ):
        src = f'tool "t" -> @tags = x.tags {op} {lit};'
        _, r = full_call(engine(src), "t", {"x": V(1, G=tuple(a))})
        assert r.result_meta.tags == fn(a, b)


@SETTINGS
@given(FINITE, FINITE, FINITE)
def test_language_precedence(a, b, c):
    """`|` binds tighter than `&`, `&` tighter than `-`, `-` tighter than `^` (§5.1)."""
    args = {"a": V(1, G=tuple(a)), "b": V(2, G=tuple(b)), "c": V(3, G=tuple(c))}
    cases = {
        "a.tags | b.tags & c.tags": (a | b) & c,
        "a.tags - b.tags | c.tags": a - (b | c),
        "a.tags ^ b.tags - c.tags": a ^ (b - c),
        "a.tags & b.tags - c.tags": (a & b) - c,
        'a.tags with "x" | b.tags': (a | {"x"}) | b,
    }
    for expr, expected in cases.items():
        _, r = full_call(engine(f'tool "t" -> @tags = {expr};'), "t", args)
        assert r.result_meta.tags == expected, expr


@SETTINGS
@given(SETS, FINITE)
def test_language_set_comparisons(a, b):
    lit = "{" + ", ".join(f'"{x}"' for x in sorted(b)) + "}"
    src = (
        f'tool "t" {{ soft allow when x.tags overlaps {lit}; }}\n'
        f'tool "u" {{ soft allow when x.tags subset of {lit}; }}\n'
        f'tool "v" {{ soft allow when x.tags superset of {lit}; }}\n'
        f'tool "w" {{ soft allow when x.tags == {lit}; }}\n'
    )
    eng = engine(src)
    args = {"x": ValueWithMeta(1, Meta(tags=a))}
    for tool, fn in (("t", set_overlaps), ("u", set_subset), ("v", set_superset), ("w", set_equals)):
        allowed = eng.before_call(tool, args, DEFAULT_META).allowed
        assert allowed == fn(a, b), (tool, a, b)

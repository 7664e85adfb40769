"""sqrt.md §11: every published policy parses and gives its documented verdicts / metadata updates."""

import pytest
from sqrt_helpers import S, V, check, compile_error, engine, full_call, tags, verdict

from relay.meta import DEFAULT_META, UNIVERSAL
from relay.sqrt import compile_policy

# ---------------------------------------------------------------- §11.1 sensitive documents

LEAK = r"""
let sensitive_docs = {"internal_use", "confidential"};
tool "get_internal_document" -> @tags |= sensitive_docs;
tool "send_email" {
    hard deny when (body.tags overlaps sensitive_docs) and (not to.value in {str matching r".*@trustedcorp\.com"});
}
"""


def test_11_1_get_internal_document_is_tagged():
    d, r = full_call(engine(LEAK), "get_internal_document", {"doc_id": "DOC12345"})
    assert d.verdict == "soft_allowed"
    assert tags(r.result_meta) >= {"internal_use", "confidential", "__non_executable"}


@pytest.mark.parametrize(
    "to, body_tags, expected",
    [
        ("research@gmail.com", ("internal_use", "confidential"), "hard_denied"),
        ("admin@trustedcorp.com", ("internal_use", "confidential"), "soft_allowed"),
        ("user@trustedcorp.com", ("confidential",), "soft_allowed"),
        ("research@gmail.com", (), "soft_allowed"),
        ("x@trustedcorp.com.evil.org", ("confidential",), "hard_denied"),
        ("x@trustedcorpXcom", ("confidential",), "hard_denied"),
    ],
)
def test_11_1_send_email(to, body_tags, expected):
    d = check(LEAK, "send_email", to=to, subject="s", body=V("…", G=body_tags))
    assert d.verdict == expected
    if expected == "hard_denied":
        assert d.denial_message.startswith(
            "Tool call to 'send_email' is denied by argument checking policies. Context: "
        )
        assert "'final_verdict': 'hard_denied'" in d.denial_message
        assert "'value_type': 'str'" in d.denial_message
    else:
        assert d.denial_message is None


# ---------------------------------------------------------------- §11.2 applicant profile

APPLICANT = r"""
tool "load_applicant_profile" -> @tags |= {"internal_use_only", "tool/load_applicant_profile"};
tool "send_email" {
    must deny when body.tags superset of {"internal_use_only"} and (not to.value in {str matching r".*@trustedcorp\.com"});
}
"""


def test_11_2_applicant():
    d, r = full_call(engine(APPLICANT), "load_applicant_profile", {"applicant_id": "applicant-829"})
    assert d.allowed and tags(r.result_meta) >= {"internal_use_only", "tool/load_applicant_profile"}
    both = V("p", G=("internal_use_only", "tool/load_applicant_profile"))
    d = check(APPLICANT, "send_email", to="hr@gmail.com", body=both)
    assert d.verdict == "hard_denied" and "'send_email' is denied" in d.denial_message
    assert (
        verdict(APPLICANT, "send_email", to="hr@trustedcorp.com", body=V("p", G=("internal_use_only",)))
        == "soft_allowed"
    )
    assert (
        verdict(APPLICANT, "send_email", to="hr@gmail.com", body=V("p", G=("tool/load_applicant_profile",)))
        == "soft_allowed"
    )


# ---------------------------------------------------------------- §11.3 refund

REFUND = """
tool "issue_refund" {
    session before {
        when "attempt3" in @tags { @tags |= {"final_attempt"}; }
    }
    session before {
        when "attempt2" in @tags { @tags |= {"attempt3"}; }
    }
    session before {
        when "attempt1" in @tags { @tags |= {"attempt2"}; }
    }
    session before {
        @tags |= {"attempt1"};
    }

    hard allow when "final_attempt" in @session.tags;
}
"""


def test_11_3_refund_on_fourth_request():
    eng = engine(REFUND, presets={"default_allow": True})
    session = DEFAULT_META
    expected_after = [
        {"attempt1"},
        {"attempt1", "attempt2"},
        {"attempt1", "attempt2", "attempt3"},
        {"attempt1", "attempt2", "attempt3", "final_attempt"},
    ]
    for i in range(4):
        d = eng.before_call("issue_refund", {"order_id": V("ORDER67890")}, session)
        assert tags(d.session_meta) == expected_after[i]
        session = d.session_meta  # persists even when denied
        if i < 3:
            assert d.verdict == "hard_denied"
            assert "'issue_refund' is denied by argument" in d.denial_message
        else:
            assert d.verdict == "hard_allowed"


# ---------------------------------------------------------------- §11.4 provenance

PROVENANCE = """
tool "get_quarterly_earning_report" -> @producers |= {"verified_financial_data"};
tool "get_marketing_analysis" -> @producers |= {"verified_marketing_data"};
// Allow generating business summary only if data comes from verified financial and marketing sources
tool "generate_business_summary" {
    hard allow when @args.producers superset of {"verified_financial_data", "verified_marketing_data"};
}
"""


def test_11_4_provenance():
    fin = V("r", P=("verified_financial_data",))
    mkt = V("m", P=("verified_marketing_data",))
    assert (
        verdict(PROVENANCE, "generate_business_summary", earning_report=fin, marketing_analysis=mkt)
        == "hard_allowed"
    )
    plain = V("The marketing analysis indicates a strong brand presence")
    assert (
        verdict(PROVENANCE, "generate_business_summary", earning_report=fin, marketing_analysis=plain)
        == "hard_denied"
    )
    assert verdict(PROVENANCE, "generate_business_summary", earning_report=fin) == "hard_denied"
    both = V("r", P=("verified_financial_data", "verified_marketing_data"))
    assert verdict(PROVENANCE, "generate_business_summary", earning_report=both) == "hard_allowed"
    _, r = full_call(engine(PROVENANCE), "get_quarterly_earning_report", {})
    assert r.result_meta.producers == {"verified_financial_data"}


# ---------------------------------------------------------------- §11.5 PII

PII = """
tool "load_patient_record" -> @tags |= {"pii"};
tool "de_identify_data" -> @tags -= {"pii"};
tool r"send_to_.*" {
    hard deny when "pii" in data.tags;
}
"""


def test_11_5_pii():
    eng = engine(PII)
    _, r = full_call(eng, "load_patient_record", {"patient_id": "PATIENT001"})
    assert "pii" in r.result_meta.tags
    _, r = full_call(eng, "de_identify_data", {"data": V("rec", G=("pii",))})
    assert tags(r.result_meta) == {"__non_executable"}
    assert verdict(PII, "send_to_research_institute", data=V("d", G=("__non_executable",))) == "soft_allowed"
    assert verdict(PII, "send_to_research_institute", data=V("d", G=("pii",))) == "hard_denied"
    assert verdict(PII, "send_to_vendor", data=V("d", G=("pii",))) == "hard_denied"
    assert verdict(PII, "resend_to_x", data=V("d", G=("pii",))) == "soft_allowed"


def test_11_5_tilde_variant_does_not_remove_pii():
    src = PII.replace(
        'tool "de_identify_data" -> @tags -= {"pii"};', 'tool "de_identify_data" -> @tags |= {"~pii"};'
    )
    eng = engine(src)
    _, r = full_call(eng, "de_identify_data", {"data": V("rec", G=("pii",))})
    assert tags(r.result_meta) == {"pii", "~pii", "__non_executable"}
    data = V("d", G=tags(r.result_meta))
    assert (
        eng.before_call("send_to_research_institute", {"data": data}, DEFAULT_META).verdict == "hard_denied"
    )


# ---------------------------------------------------------------- §11.6 fairness in control flow


def test_11_6_branching_meta_policy():
    src = 'tool "retrive_applicant_profile" -> @tags |= {"RACE"};'
    custom = engine(src, mode="custom", presets={"branching_meta_policy": {"mode": "deny", "tags": ["RACE"]}})
    _, r = full_call(custom, "retrive_applicant_profile", {})
    assert "RACE" in r.result_meta.tags
    msg = custom.check_branch(r.result_meta)
    assert msg and "Control flow violation" in msg
    assert custom.check_branch(DEFAULT_META) is None
    # without a branching policy, or outside custom mode: no restriction
    assert engine(src, mode="custom").check_branch(r.result_meta) is None
    standard = engine(src, presets={"branching_meta_policy": {"mode": "deny", "tags": ["RACE"]}})
    assert standard.check_branch(r.result_meta) is None


# ---------------------------------------------------------------- §11.7 __llm_blocked


def test_11_7_llm_blocked():
    src = 'tool "retrive_applicant_profile_text" -> @tags |= {"__llm_blocked"};'
    _, r = full_call(engine(src), "retrive_applicant_profile_text", {})
    assert "__llm_blocked" in r.result_meta.tags
    blocked = V("text", G=("__llm_blocked", "__non_executable"))
    d = check(src, "parse_with_ai", query=blocked, output_schema=V({}))
    assert d.verdict == "hard_denied"
    assert d.denial_message.startswith(
        "Tool call to 'parse_with_ai' is denied by argument checking policies."
    )
    off = {"presets": {"enable_llm_blocked_tag": False}}
    assert verdict(src, "parse_with_ai", kw=off, query=blocked, output_schema=V({})) == "soft_allowed"
    assert verdict(src, "send_email", attachment_content=blocked) == "soft_allowed"
    soft = {"presets": {"llm_blocked_tag_enforcement_level": "soft"}}
    assert verdict(src, "parse_with_ai", kw=soft, query=blocked) == "soft_denied"


# ---------------------------------------------------------------- §11.8 metadata tutorial

PROFILE = """
tool "get_applicant_profile" {
    result {
        @producers |= {"university_database_service"};
        @consumers |= {"admissions_office", "scholarship_committee", "email_service"};
        @tags |= {"education", "university", "personal_data"};
    }
}
"""

UNIVERSITY_MAIL = """
tool "send_email" {
    hard deny when ("university_database_service" in body.producers) and
        not (to.value in {str like w"*@university.edu", "hr@admission.edu"});
}
"""


def test_11_8_metadata_tutorial():
    _, r = full_call(engine(PROFILE), "get_applicant_profile", {"name": "Alice White"})
    assert r.result_meta.producers == {"university_database_service"}
    assert tags(r.result_meta) == {"education", "university", "personal_data", "__non_executable"}
    assert r.result_meta.consumers is UNIVERSAL
    body = V("profile", P=("university_database_service",))
    assert verdict(UNIVERSITY_MAIL, "send_email", to="research@gmail.com", body=body) == "hard_denied"
    assert verdict(UNIVERSITY_MAIL, "send_email", to="dean@university.edu", body=body) == "soft_allowed"
    assert verdict(UNIVERSITY_MAIL, "send_email", to="hr@admission.edu", body=body) == "soft_allowed"
    # Vector 5 of §11.8 says "allowed (`*` spans dots)", but "x@sub.university.edu" does not end with
    # "@university.edu", so no glob semantics can match it; we keep glob semantics (deviation, reported).
    assert verdict(UNIVERSITY_MAIL, "send_email", to="x@sub.university.edu", body=body) == "hard_denied"
    spans = UNIVERSITY_MAIL.replace('w"*@university.edu"', 'w"*university.edu"')
    assert verdict(spans, "send_email", to="x@sub.university.edu", body=body) == "soft_allowed"
    assert verdict(UNIVERSITY_MAIL, "send_email", to="research@gmail.com", body="hi") == "soft_allowed"


# ---------------------------------------------------------------- §11.9 quick reference

QUICK = """
tool "my_tool" {
    must deny when condition;     // Hard block
    should allow when condition;  // Soft allow
    should deny always;           // Default fallback
}
"""


def test_11_9_quick_reference_needs_its_let():
    err = compile_error(QUICK)
    assert "condition" in err.message and err.line == 3
    src = 'let condition = x.value == "bad";\n' + QUICK
    assert verdict(src, "my_tool", x="bad") == "hard_denied"
    assert verdict(src, "my_tool", x="ok") == "soft_denied"


def test_11_9_result_and_session_blocks():
    src = """
tool "my_tool" {
    result {
        @tags |= {"processed"};
    }
    session after {
        @tags |= {"completed"};
    }
}
"""
    _, r = full_call(engine(src), "my_tool", {})
    assert "processed" in r.result_meta.tags and tags(r.session_meta) == {"completed"}


def test_11_9_shorthands_with_priority_and_condition():
    src = """
tool "my_tool" -> @tags |= {"tagged"};
tool "my_tool" [10] -> session @tags |= {"priority"} when @result.tags overlaps {"important"};
"""
    eng = engine(src)
    _, r = full_call(eng, "my_tool", {"a": V(1, G=("important",))})
    assert {"tagged", "important"} <= tags(r.result_meta) and tags(r.session_meta) == {"priority"}
    _, r = full_call(eng, "my_tool", {"a": V(1)})
    assert "tagged" in r.result_meta.tags and tags(r.session_meta) == set()
    assert [t.priority for t in compile_policy(src).tools] == [0, 10]


# ---------------------------------------------------------------- §11.10 tool-policy tutorial


def test_11_10_basic_structure_and_description():
    src = """
/// Policy for send_email tool
tool "send_email" {
    priority 100;

    // Check rules
    must deny when to.value in {"spam@evil.com"};
    should allow always;
}
"""
    pol = compile_policy(src)
    assert pol.tools[0].description == "Policy for send_email tool" and pol.tools[0].priority == 100
    assert verdict(src, "send_email", to="spam@evil.com") == "hard_denied"
    assert verdict(src, "send_email", to="bob@x.org") == "soft_allowed"


FILE_ACCESS = """
tool "file_access" {
    // Hard deny: blocks the call, cannot be overridden
    must deny when path.value in {"/etc/passwd", "/etc/shadow"};

    // Hard allow: always permits when condition is met
    must allow when user.tags overlaps {"root"};

    // Soft deny: can be overridden by higher priority allow
    should deny when path.tags overlaps {"sensitive"};

    // Soft allow: permits but can be overridden
    should allow when user.tags overlaps {"trusted"};

    // Unconditional fallback
    should deny always;
}
"""


def test_11_10_check_rules():
    assert verdict(FILE_ACCESS, "file_access", path="/etc/passwd", user=V("u", G=("root",))) == "hard_denied"
    assert verdict(FILE_ACCESS, "file_access", path="/srv/a", user=V("u", G=("root",))) == "hard_allowed"
    assert (
        verdict(FILE_ACCESS, "file_access", path=V("/data", G=("sensitive",)), user=V("u", G=("trusted",)))
        == "soft_denied"
    )
    assert verdict(FILE_ACCESS, "file_access", path="/data", user=V("u", G=("trusted",))) == "soft_allowed"
    assert verdict(FILE_ACCESS, "file_access", path="/data", user=V("u")) == "soft_denied"
    both = FILE_ACCESS + '\ntool r"^file_.*" { priority 10; should allow always; }\n'
    assert verdict(both, "file_access", path="/data", user=V("u")) == "soft_allowed"


def test_11_10_result_block():
    src = """
tool "process_data" {
    result {
        // Add tags to mark processing
        @result.tags = @result.tags | {"processed", "verified"};

        // Track the tool as a producer
        @result.producers = @result.producers with "process_data";

        // Conditional updates
        when @result.tags overlaps {"sensitive"} {
            @result.consumers = @result.consumers & {"internal"};
        }
    }
}
"""
    eng = engine(src)
    _, r = full_call(eng, "process_data", {"x": V(1, G=("sensitive",))})
    assert tags(r.result_meta) == {"sensitive", "processed", "verified", "__non_executable"}
    assert r.result_meta.producers == {"process_data"} and r.result_meta.consumers == {"internal"}
    _, r = full_call(eng, "process_data", {"x": V(1)})
    assert r.result_meta.consumers is UNIVERSAL


LOGIN = """
tool "login" {
    // Before: runs before tool execution
    session before {
        @session.tags = @session.tags | {"auth:pending"};
    }

    // After: runs after tool execution, can access @result
    session after {
        when @result.tags overlaps {"auth:success"} {
            @session.tags = @session.tags | {"authenticated"};
        }
        @session.tags = @session.tags - {"auth:pending"};
    }
}
"""


def test_11_10_session_blocks():
    eng = engine(LOGIN)
    wrapper = {
        "value": "ok",
        "meta": {"producers": [], "consumers": ["*"], "tags": ["auth:success"]},
        "is_sequrity_var": True,
    }
    d, r = full_call(eng, "login", {}, wrapper=wrapper)
    assert tags(d.session_meta) == {"auth:pending"}
    assert tags(r.session_meta) == {"authenticated"}
    _, r = full_call(eng, "login", {})
    assert tags(r.session_meta) == set()
    # denied by another policy: auth:pending stays
    denied = LOGIN + '\ntool "login" { hard deny always; }'
    d = engine(denied).before_call("login", {}, DEFAULT_META)
    assert d.verdict == "hard_denied" and tags(d.session_meta) == {"auth:pending"}


def test_11_10_augmented_operators():
    src = """
tool "tag_updater" {
    result {
        // |= is shorthand for union: @tags = @tags | {...}
        @tags |= {"new_tag"};

        // &= is shorthand for intersect: @tags = @tags & {...}
        @producers &= {"allowed_producers"};

        // -= is shorthand for minus: @tags = @tags - {...}
        @consumers -= {"removed"};

        // ^= is shorthand for xor
        @tags ^= {"toggled"};
    }
}
"""
    _, r = full_call(
        engine(src), "tag_updater", {"a": V(1, P=("allowed_producers", "other"), G=("toggled",))}
    )
    assert tags(r.result_meta) == {"new_tag", "__non_executable"}
    assert r.result_meta.producers == {"allowed_producers"}
    assert r.result_meta.consumers is UNIVERSAL


def test_11_10_context_sugar():
    src = """
tool "demo" {
    // In result block: @tags means @result.tags
    result {
        @tags = @tags | {"from_result"};
        @producers = @producers with "demo_tool";
    }

    // In session block: @tags means @session.tags
    session after {
        @tags = @tags | {"from_session"};
    }
}
"""
    _, r = full_call(engine(src), "demo", {"x": V(1)})
    assert "from_result" in r.result_meta.tags and "demo_tool" in r.result_meta.producers
    assert "from_session" in r.session_meta.tags and "from_session" not in r.result_meta.tags


SHORTHANDS = """
// Basic: defaults to result target, priority 0
tool "t1" -> @tags |= {"tagged"};

// With priority
tool "t2" [10] -> @tags |= {"high_priority"};

// Explicit result target
tool "t3" -> result @tags |= {"result_tag"};

// Session target (defaults to after)
tool "t4" -> session @tags |= {"session_tag"};

// Session before
tool "t5" -> session before @tags |= {"pre_process"};

// With condition
tool "t6" -> @tags |= {"flagged"} when @result.tags overlaps {"important"};

// Simple assignment (replaces instead of merging)
tool "t7" -> @tags = {"replaced"};

// Remove element
tool "t8" -> @tags = @tags without "removed";
"""


def test_11_10_shorthand_forms():
    eng = engine(SHORTHANDS)
    assert "tagged" in full_call(eng, "t1", {})[1].result_meta.tags
    assert "high_priority" in full_call(eng, "t2", {})[1].result_meta.tags
    assert [t.priority for t in compile_policy(SHORTHANDS).tools][1] == 10
    assert "result_tag" in full_call(eng, "t3", {})[1].result_meta.tags
    d, r = full_call(eng, "t4", {})
    assert tags(d.session_meta) == set() and tags(r.session_meta) == {"session_tag"}
    d = engine(SHORTHANDS + '\ntool "t5" { hard deny always; }').before_call("t5", {}, DEFAULT_META)
    assert not d.allowed and tags(d.session_meta) == {"pre_process"}
    assert "flagged" in full_call(eng, "t6", {"a": V(1, G=("important",))})[1].result_meta.tags
    assert "flagged" not in full_call(eng, "t6", {"a": V(1)})[1].result_meta.tags
    assert tags(full_call(eng, "t7", {"a": V(1, G=("x",))})[1].result_meta) == {"replaced"}
    assert tags(full_call(eng, "t8", {"a": V(1, G=("removed", "keep"))})[1].result_meta) == {
        "keep",
        "__non_executable",
    }


def test_11_10_regex_tool_ids():
    src = """
// Match all tools starting with "file_"
tool r"^file_.*" {
    must deny when path.tags overlaps {"blocked"};
}

// Match specific patterns
tool r"^(send|forward)_email$" {
    should deny when to.tags overlaps {"external"};
}

// Shorthand with regex
tool r"^log_.*" -> @tags |= {"logged"};
"""
    assert verdict(src, "file_read", path=V("p", G=("blocked",))) == "hard_denied"
    assert verdict(src, "file_read", path=V("p")) == "soft_allowed"
    assert verdict(src, "forward_email", to=V("t", G=("external",))) == "soft_denied"
    assert verdict(src, "send_emails", to=V("t", G=("external",))) == "soft_allowed"
    assert "logged" in full_call(engine(src), "log_event", {})[1].result_meta.tags


DOCS = """
/// Main policy for email sending
/// Handles spam filtering and access control
tool "send_email" {
    /// Block known spam recipients
    must deny when to.value in {"spam@evil.com"};

    /// Allow internal communications
    should allow when to.tags overlaps {"internal"};

    /// Default: require review
    should deny always;
}

/// Shorthand with doc comment
tool "quick_action" -> @tags |= {"processed"};
"""


def test_11_10_doc_comments():
    pol = compile_policy(DOCS)
    assert (
        pol.tools[0].description == "Main policy for email sending\nHandles spam filtering and access control"
    )
    assert pol.tools[1].description == "Shorthand with doc comment"
    d = check(DOCS, "send_email", to="spam@evil.com")
    assert d.verdict == "hard_denied"
    assert d.record["denied"][0]["description"] == "Block known spam recipients"
    d = check(DOCS, "send_email", to=V("a", G=("internal",)))
    assert (
        d.verdict == "soft_allowed"
        and d.record["allowed"][0]["description"] == "Allow internal communications"
    )
    assert verdict(DOCS, "send_email", to="bob@x.org") == "soft_denied"


COMPLETE = r"""
// Reusable predicates
let IsSensitive = data.tags overlaps {"pii", "secret", "confidential"};
let IsExternal = @result.consumers overlaps {"external_api", "public"};
let IsAdmin = user.tags overlaps {"admin", "superuser"};

// Reusable sets
let InternalDomains = {"@company.com", "@internal.org"};
let BlockedRecipients = {"spam@evil.com", str matching r".*@blocked\\.com$"};

/// Main email policy with full access control
tool "send_email" {
    priority 100;

    /// Hard block for known bad recipients
    must deny when to.value in BlockedRecipients;

    /// Allow admins unrestricted access
    must allow when IsAdmin;

    /// Soft deny external sends of sensitive data
    should deny when IsSensitive and IsExternal;

    /// Default allow for internal
    should allow always;

    result {
        // Track email sending
        @tags |= {"email:sent"};
        @producers |= {"email_service"};

        // Restrict sensitive data consumers
        when IsSensitive {
            @consumers &= {"internal", "audit"};
        }
    }

    session after {
        // Log successful email sends
        when @result.tags overlaps {"email:sent"} {
            @tags |= {"activity:email"};
        }
    }
}

// Shorthand for simple read-only operations
tool r"^(read|get|list)_.*" -> @tags |= {"readonly"};
tool "audit_log" [50] -> session @producers |= {"audit_system"};
"""


def test_11_10_complete_example():
    admin = V("u", G=("admin",))
    assert verdict(COMPLETE, "send_email", to="x@blocked.com", user=admin) == "hard_denied"
    assert verdict(COMPLETE, "send_email", to="a@b.com", user=admin) == "hard_allowed"
    eng = engine(COMPLETE)
    d, r = full_call(eng, "send_email", {"to": "a@b.com", "data": V("d", G=("pii",)), "user": V("u")})
    assert d.verdict == "soft_allowed"
    assert tags(r.result_meta) >= {"email:sent"} and r.result_meta.producers >= {"email_service"}
    assert r.result_meta.consumers == {"internal", "audit"}
    assert "activity:email" in r.session_meta.tags
    for tool in ("read_file", "get_x", "list_y"):
        assert "readonly" in full_call(eng, tool, {})[1].result_meta.tags
    assert "readonly" not in full_call(eng, "reader", {})[1].result_meta.tags
    assert full_call(eng, "audit_log", {})[1].session_meta.producers == {"audit_system"}


# ---------------------------------------------------------------- §11.11 snippets and vectors

DOMAIN_VECTORS = [
    ("bool true", [True], [False, 1, "true"]),
    ("int 42", [42], [42.5, "42", True]),
    ("int 1..100", [1, 100], [0, 101]),
    ("int 0<..<100", [1, 99], [0, 100]),
    ("int 0<..10", [10], [0]),
    ("int 0..<10", [0], [10]),
    ("int 10..", [10, 10000], [9]),
    ("int ..50", [-3, 50], [51]),
    ("float 3.14", [3.14], [3.15]),
    ("float 0.0..1.0", [0, 0.5, 1.0], [1.01]),
    ("float ..<3.14", [3.13], [3.14]),
    ('str "hello world"', ["hello world"], ["hello"]),
    (r'str matching r"^[a-z]+@example\\.com$"', ["bob@example.com"], ["Bob@example.com", "bob@exampleXcom"]),
    ('str like w"*.txt"', ["a.txt", ".txt"], ["a.txt.bak"]),
    ('str matching r".*" length 1..20', ["a"], ["", "x" * 21]),
    ('datetime d"2023-10-01T00:00:00Z"', ["2023-10-01T00:00:00+00:00"], ["2023-10-01T00:00:01Z"]),
    (
        'datetime d"2023-09-01T00:00:00Z"..d"2023-10-01T00:00:00Z"',
        ["2023-09-15T12:00:00Z", 1695000000],
        ["2023-10-02T00:00:00Z"],
    ),
    ("datetime 0", [0, "1970-01-01T00:00:00Z"], [1]),
]


@pytest.mark.parametrize("domain, inside, outside", DOMAIN_VECTORS)
def test_11_11_domain_membership(domain, inside, outside):
    src = f'let D = {domain};\ntool "t" {{ hard deny when x.value in {{{domain}}}; hard deny when y.value in D; }}'
    for v in inside:
        assert verdict(src, "t", x=v) == "hard_denied", (domain, v)
        assert verdict(src, "t", y=v) == "hard_denied", (domain, v)
    for v in outside:
        assert verdict(src, "t", x=v) == "soft_allowed", (domain, v)
        assert verdict(src, "t", y=v) == "soft_allowed", (domain, v)


ARG1 = V("v", G=("a", "b", "toggle"))
ARG2 = V("w", G=("b", "c"))


@pytest.mark.parametrize(
    "expr, expected, two_args",
    [
        ('arg1.tags | {"new"}', {"a", "b", "toggle", "new"}, False),
        ('arg1.tags & {"a", "b"}', {"a", "b"}, False),
        ('arg1.tags - {"remove"}', {"a", "b", "toggle"}, False),
        ('arg1.tags ^ {"toggle"}', {"a", "b"}, False),
        ('arg1.tags with "added"', {"a", "b", "toggle", "added"}, False),
        ('arg1.tags with "new" without "old"', {"a", "b", "toggle", "new"}, False),
        ("union of tags from args", {"a", "b", "toggle", "c"}, True),
        ("@args.tags", {"a", "b", "toggle", "c"}, True),
        ("@args.tags.union", {"a", "b", "toggle", "c"}, True),
        ("intersect of tags from args", {"b"}, True),
        ("@args.tags.intersect", {"b"}, True),
        ('(arg1.tags) | (arg2.tags) - {"b"}', {"a", "toggle", "c"}, True),  # (a | b) - c
    ],
)
def test_11_11_set_expressions(expr, expected, two_args):
    src = f'let E = {expr};\ntool "t" -> @tags = E;'
    args = {"arg1": ARG1, "arg2": ARG2} if two_args else {"arg1": ARG1}
    _, r = full_call(engine(src), "t", args)
    assert tags(r.result_meta) == expected


def test_11_11_aggregation_consumers_and_universal():
    src = 'tool "t" -> @consumers = @args.consumers.intersect;'
    _, r = full_call(engine(src), "t", {"arg1": V(1, C=("x", "y")), "arg2": V(2)})
    assert r.result_meta.consumers == {"x", "y"}
    _, r = full_call(engine('tool "t" -> @tags = arg1.tags | {"a"};'), "t", {"arg1": V(1, G=("*",))})
    assert r.result_meta.tags is UNIVERSAL
    # aggregations over zero arguments
    _, r = full_call(engine('tool "t" -> @consumers = @args.consumers.intersect;'), "t", {})
    assert r.result_meta.consumers is UNIVERSAL
    _, r = full_call(engine('tool "t" -> @tags = @args.tags;'), "t", {})
    assert tags(r.result_meta) == set()


PREDICATES = r"""
let IsAdmin = arg1.value in {"admin", "root", "superuser"};
let IsSpecificUser = arg1.value == "alice";
let IsValidPort = port.value in {int 1..65535};
let IsEmail = email.value in {str matching r"^[a-z]+@example\\.com$"};
let HasSensitiveTag = data.tags overlaps {"pii", "secret", "confidential"};
let OnlyAllowedTags = data.tags subset of {"public", "internal", "safe"};
let HasRequiredTags = data.tags superset of {"reviewed", "approved"};
let ExactMatch = data.tags == {"expected", "tags"};
let NoTags = data.tags is empty;
let OpenAccess = data.consumers is universal;
let IsAdminRole = role.value == "admin";
let IsTrusted = user.tags overlaps {"trusted", "verified"};
let IsSensitive = data.tags overlaps {"pii", "secret"};
let AdminAndTrusted = IsAdminRole and IsTrusted;
let AdminOrTrusted = IsAdminRole or IsTrusted;
let NotAdmin = not IsAdminRole;
let CanAccessSensitive = (IsAdminRole or IsTrusted) and not IsSensitive;
let SessionIsAdmin = @session.tags overlaps {"admin", "elevated"};
let ArgsInSession = arg1.tags subset of @session.tags;
let SessionActive = @session.value == "active";
"""


def pred(name, session=DEFAULT_META, **args):
    src = PREDICATES + f'tool "t" {{ hard deny when {name}; }}'
    return verdict(src, "t", session, **args) == "hard_denied"


def test_11_11_predicate_vectors():
    assert pred("IsAdmin", arg1="root") is True
    assert pred("IsAdmin", arg1="alice") is False
    assert pred("IsSpecificUser", arg1="alice") is True
    assert [pred("IsValidPort", port=p) for p in (8080, 0, "80")] == [True, False, False]
    assert pred("IsEmail", email="bob@example.com") is True
    assert pred("HasSensitiveTag", data=V(1, G=("pii", "x"))) is True
    assert [pred("OnlyAllowedTags", data=V(1, G=g)) for g in (("public",), (), ("public", "pii"))] == [
        True,
        True,
        False,
    ]
    assert [
        pred("HasRequiredTags", data=V(1, G=g)) for g in (("reviewed", "approved", "x"), ("reviewed",))
    ] == [True, False]
    assert [pred("ExactMatch", data=V(1, G=g)) for g in (("tags", "expected"), ("expected",))] == [
        True,
        False,
    ]
    assert pred("NoTags", data=V(1)) is True
    assert [pred("OpenAccess", data=V(1)), pred("OpenAccess", data=V(1, C=("a",)))] == [True, False]
    assert pred("CanAccessSensitive", role="admin", data=V(1, G=("pii",))) is False
    assert pred("CanAccessSensitive", user=V(1, G=("verified",)), data=V(1)) is True
    assert pred("AdminAndTrusted", role="admin", user=V(1, G=("trusted",))) is True
    assert pred("AdminOrTrusted", role="x", user=V(1)) is False
    assert pred("NotAdmin", role="x") is True
    assert pred("SessionIsAdmin", S("elevated")) is True
    assert pred("ArgsInSession", S("a", "b"), arg1=V(1, G=("a",))) is True
    assert pred("SessionActive", S("active")) is False


def test_11_11_reusable_predicates_in_tool():
    src = """
// Define reusable predicates
let IsBlocked = to.value in {"spam@evil.com", "blocked@test.com"};
let IsTrustedSender = from.tags overlaps {"trusted", "internal"};

// Use predicates in tool checks
tool "send_email" {
    must deny when IsBlocked;
    should allow when IsTrustedSender;
    should allow always;
}
"""
    assert verdict(src, "send_email", to="spam@evil.com") == "hard_denied"
    assert verdict(src, "send_email", to="a@b.c", **{"from": V("f", G=("internal",))}) == "soft_allowed"
    assert verdict(src, "send_email", to="a@b.c") == "soft_allowed"


def test_11_11_header_example():
    src = 'tool "x" { must allow always; }'
    assert verdict(src, "x") == "hard_allowed"
    assert verdict(src, "y") == "soft_allowed"


def test_11_12_langgraph_tutorial_example_is_rejected_at_line_4():
    src = """// Custom security policies
let sensitive_tables = {"users", "payments"};
tool "execute_query" {
    hard deny when sql_query.value matching r".*DELETE.*";
    when tables.value in {"users"} -> @tags |= {"sensitive"};
}
"""
    assert compile_error(src).line == 4
    valid = r"""
tool "execute_query" {
    hard deny when sql_query.value in {str matching r".*DELETE.*"};
}
let sensitive_tables = {"users", "payments"};
tool "get_schema" -> @tags |= {"sensitive"} when tables.value in {str matching r".*(users|payments).*"};
"""
    assert verdict(valid, "execute_query", sql_query="DELETE FROM users") == "hard_denied"
    assert verdict(valid, "execute_query", sql_query="SELECT 1") == "soft_allowed"
    _, r = full_call(engine(valid), "get_schema", {"tables": "users,payments"})
    assert "sensitive" in r.result_meta.tags
    _, r = full_call(engine(valid), "get_schema", {"tables": "orders"})
    assert "sensitive" not in r.result_meta.tags

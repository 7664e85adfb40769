"""The SQRT grammar (lark): the lexical rules and the syntax of the policy language.

One grammar serves two parsers:

* LALR(1) (the fast path) with a contextual lexer (``relay.sqrt.parser._FastLexer``, equivalent to lark's
  contextual lexer for this grammar but with one master regex). Keywords are plain string terminals; in a
  parser state where a keyword is not acceptable but an identifier is, the lexer yields an identifier,
  which gives the language's contextual keywords (``let let = {};``, ``tags.value``...).
* Earley with the dynamic (scannerless) lexer, used only when LALR rejects a program, to accept the same
  odd spellings that the reference validator accepts (``letx = {};`` read as ``let x = {};``, a keyword
  used as a let name in expression position...).

Predicates and set expressions share one expression grammar (``expr``) so that LALR needs no lookahead to
decide between them; the operand restrictions ("the left of ``overlaps`` must be an accessor", ...)
are enforced right after parsing by ``relay.sqrt.parser`` and reported as syntax errors.
"""

GRAMMAR = r"""
start: declaration*

declaration: docs let_decl
           | docs tool_block
           | docs tool_shorthand

docs: DOC_COMMENT*

// ---- let ----
let_decl: "let" IDENT "=" let_value ";"
?let_value: expr
          | domain

// ---- tool blocks ----
tool_block: "tool" tool_id "{" member* "}"
tool_id: STRING
       | REGEX
member: docs priority
      | docs check_rule
      | docs result_block
      | docs session_block
priority: "priority" INT ";"
check_rule: level verdict condition ";"
!level: "must" | "hard" | "should" | "soft"
!verdict: "allow" | "deny"
condition: "when" expr
         | ALWAYS

result_block: "result" "{" stmt* "}"
session_block: "session" timing "{" stmt* "}"
!timing: "before" | "after"
stmt: docs update ";"
    | docs "when" expr "{" inner* "}"
inner: update ";"
update: target assign expr
target: "@" meta                -> t_ctx
      | "@result" "." meta      -> t_result
      | "@session" "." meta     -> t_session
      | IDENT "." meta          -> t_arg
!assign: "=" | "|=" | "&=" | "-=" | "^="
!meta: "tags" | "producers" | "consumers"

// ---- shorthand ----
tool_shorthand: "tool" tool_id sh_priority? "->" sh_target? "@" meta assign expr sh_when? ";"
sh_priority: "[" INT "]"
!sh_target: "result"
          | "session"
          | "session" "before"
          | "session" "after"
sh_when: "when" expr

// ---- expressions ----
// Predicates and set expressions share one flat grammar: a sequence of terms separated by binary operators.
// Precedence and associativity are resolved by a precedence-climbing pass in the
// AST builder, which keeps the LALR automaton small (one reduction per term instead of one per level).
expr: term (binop term)*
?term: primary
     | NOT term                       -> prefix_not
?primary: atom
        | primary "is" "empty"        -> c_empty
        | primary "is" "universal"    -> c_universal
        | primary "with" element      -> s_with
        | primary "without" element   -> s_without
!binop: "or" | "and"
      | "in" | "==" | "overlaps" | "subset" "of" | "superset" "of"
      | "^" | "xor" | "-" | "minus" | "&" | "intersect" | "|" | "union"

?atom: set_literal
     | IDENT                          -> ref
     | LPAR expr RPAR                 -> paren
     | IDENT VALUE_DOT                -> arg_value
     | "@result" VALUE_DOT            -> result_value
     | "@session" VALUE_DOT           -> session_value
     | IDENT "." meta                 -> arg_meta
     | "@result" "." meta             -> result_meta
     | "@session" "." meta            -> session_meta
     | "@" meta                       -> ctx_meta
     | "@args" "." meta agg_suffix?   -> args_meta
     | agg_op "of" meta "from" "args" -> aggregation
     | STRING                         -> lit_str
     | DATETIME                       -> lit_dt
     | number                         -> lit_num
     | boolean                        -> lit_bool
agg_suffix: "." agg_op
!agg_op: "union" | "intersect"

set_literal: LBRACE [element ("," element)*] RBRACE
?element: STRING                      -> el_str
        | REGEX                       -> el_regex
        | WILDCARD                    -> el_wild
        | number                      -> el_num
        | domain

// ---- type domains ----
domain: "bool" boolean                -> d_bool
      | "int" range                   -> d_int
      | "float" range                 -> d_float
      | "str" str_pattern             -> d_str
      | "str" str_pattern "length" range -> d_str_len
      | "datetime" dt_spec            -> d_dt
str_pattern: STRING                   -> sp_exact
           | "matching" REGEX         -> sp_regex
           | "like" WILDCARD          -> sp_wild
range: number range_op number         -> r_both
     | lopen_op number                -> r_to
     | number ropen_op                -> r_from
     | number                         -> r_exact
dt_spec: DATETIME range_op DATETIME   -> r_both
       | lopen_op DATETIME            -> r_to
       | DATETIME ropen_op            -> r_from
       | DATETIME                     -> r_exact
       | STRING                       -> r_exact
       | number                       -> r_exact
!range_op: "<..<" | "<.." | "..<" | ".."
!lopen_op: "..<" | ".."
!ropen_op: "<.." | ".."
!number: INT | FLOAT | "inf" | "-inf" | "+inf"
!boolean: "true" | "false"

// ---- terminals ----
LPAR: "("
NOT: "not"
LBRACE: "{"
RBRACE: "}"
RPAR: ")"
ALWAYS: "always"
VALUE_DOT: ".value"
IDENT: /[A-Za-z_][A-Za-z0-9_]*/
STRING: /"(?:[^"\\]|\\.)*"/
REGEX.2: /r"(?:[^"\\]|\\.)*"/
WILDCARD.2: /w"(?:[^"\\]|\\.)*"/
DATETIME.2: /d"(?:[^"\\]|\\.)*"/
INT: /-?[0-9]+/
FLOAT: /-?[0-9]+\.[0-9]+/
DOC_COMMENT: /\/\/\/[^\n]*/
LINE_COMMENT: /\/\/(?!\/)[^\n]*/
BLOCK_COMMENT: /\/\*(?:.|\n)*?\*\//
WS: /[ \t\r\n]+/
%ignore WS
%ignore LINE_COMMENT
%ignore BLOCK_COMMENT
"""

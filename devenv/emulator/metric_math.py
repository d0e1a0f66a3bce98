"""The part of CloudWatch metric math alarms use locally: a pure, point-wise evaluator.

Supported: numbers, metric ids, `+ - * / ^`, comparisons (`> < >= <= == !=`, giving 1 or 0), `AND`/`&&`,
`OR`/`||`, parentheses, `IF(condition, a[, b])`, `FILL(series, number)` and `ABS(x)` (the stack's
5xx-rate alarm uses IF and FILL). Each period is computed on its own: a missing operand makes the result
missing, as CloudWatch drops a timestamp a series lacks; FILL gives the missing periods a value. Anything
else (functions over time such as RATE or FILL(m, REPEAT), SEARCH, METRICS()) raises NotEvaluated naming it.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from devenv.emulator.alarm_rules import NotEvaluated

TOKEN = re.compile(
    r"\s*(?:(\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)|([A-Za-z_][A-Za-z0-9_]*)|(>=|<=|==|!=|&&|\|\||[-+*/^(),<>]))"
)
BINARY: dict[str, tuple[int, Callable[[float, float], float]]] = {
    "OR": (1, lambda a, b: float(bool(a) or bool(b))),
    "AND": (2, lambda a, b: float(bool(a) and bool(b))),
    ">": (3, lambda a, b: float(a > b)),
    "<": (3, lambda a, b: float(a < b)),
    ">=": (3, lambda a, b: float(a >= b)),
    "<=": (3, lambda a, b: float(a <= b)),
    "==": (3, lambda a, b: float(a == b)),
    "!=": (3, lambda a, b: float(a != b)),
    "+": (4, operator.add),
    "-": (4, operator.sub),
    "*": (5, operator.mul),
    "/": (5, operator.truediv),
    "^": (6, operator.pow),
}
ALIASES = {"&&": "AND", "||": "OR"}
FUNCTIONS = ("IF", "FILL", "ABS")

Value = float | None


@dataclass(frozen=True)
class Number:
    value: float


@dataclass(frozen=True)
class Name:
    id: str


@dataclass(frozen=True)
class Negate:
    operand: Node


@dataclass(frozen=True)
class Binary:
    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Call:
    function: str
    args: tuple[Node, ...]


Node = Number | Name | Negate | Binary | Call


def tokens(expression: str) -> list[str]:
    found, position = [], 0
    text = expression.rstrip()
    while position < len(text):
        match = TOKEN.match(text, position)
        if not match:
            raise NotEvaluated(
                f"metric math expression {expression!r}: cannot read it at {text[position:]!r}"
            )
        found.append(next(group for group in match.groups() if group is not None))
        position = match.end()
    return [ALIASES.get(t.upper(), t.upper() if t.upper() in BINARY else t) for t in found]


def parse(expression: str) -> Node:
    """The expression's tree; NotEvaluated names what the local cloud does not compute."""
    parser = _Parser(expression, tokens(expression))
    node = parser.expression(0)
    if parser.position != len(parser.tokens):
        raise parser.error()
    return node


def names(node: Node) -> set[str]:
    """The metric ids an expression reads."""
    if isinstance(node, Name):
        return {node.id}
    if isinstance(node, Negate):
        return names(node.operand)
    if isinstance(node, Binary):
        return names(node.left) | names(node.right)
    if isinstance(node, Call):
        return set().union(*(names(arg) for arg in node.args))
    return set()


def evaluate(node: Node, values: Mapping[str, Value]) -> Value:
    """The expression's value for one period, given each id's datapoint there (None: missing)."""
    if isinstance(node, Number):
        return node.value
    if isinstance(node, Name):
        return values.get(node.id)
    if isinstance(node, Negate):
        inner = evaluate(node.operand, values)
        return None if inner is None else -inner
    if isinstance(node, Binary):
        left, right = evaluate(node.left, values), evaluate(node.right, values)
        if left is None or right is None:
            return None
        try:
            return BINARY[node.op][1](left, right)
        except (ZeroDivisionError, OverflowError):
            return None
    if node.function == "FILL":
        series = evaluate(node.args[0], values)
        return evaluate(node.args[1], values) if series is None else series
    if node.function == "ABS":
        inner = evaluate(node.args[0], values)
        return None if inner is None else abs(inner)
    condition = evaluate(node.args[0], values)  # IF
    if condition is None:
        return None
    if condition:
        return evaluate(node.args[1], values)
    return evaluate(node.args[2], values) if len(node.args) == 3 else None


class _Parser:
    def __init__(self, expression: str, tokens: list[str]) -> None:
        self.source = expression
        self.tokens = tokens
        self.position = 0

    def error(self) -> NotEvaluated:
        rest = " ".join(self.tokens[self.position :]) or "its end"
        return NotEvaluated(f"metric math expression {self.source!r}: unexpected {rest!r}")

    def peek(self) -> str | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None or (expected is not None and token != expected):
            raise self.error()
        self.position += 1
        return token

    def expression(self, min_precedence: int) -> Node:
        left = self.unary()
        while (op := self.peek()) in BINARY and BINARY[op][0] > min_precedence:
            self.take()
            right = self.expression(BINARY[op][0] - (1 if op == "^" else 0))
            left = Binary(op, left, right)
        return left

    def unary(self) -> Node:
        if self.peek() == "-":
            self.take()
            return Negate(self.unary())
        return self.primary()

    def primary(self) -> Node:
        token = self.take()
        if token == "(":
            node = self.expression(0)
            self.take(")")
            return node
        if token[0].isdigit():
            return Number(float(token))
        if not (token[0].isalpha() or token[0] == "_"):
            self.position -= 1
            raise self.error()
        if self.peek() != "(":
            return Name(token)
        function = token.upper()
        if function not in FUNCTIONS:
            raise NotEvaluated(
                f"metric math function {token} (the local cloud evaluates {', '.join(FUNCTIONS)} and arithmetic)"
            )
        self.take("(")
        args = [self.expression(0)]
        while self.peek() == ",":
            self.take()
            args.append(self.expression(0))
        self.take(")")
        arity = {"IF": (2, 3), "FILL": (2,), "ABS": (1,)}[function]
        if len(args) not in arity:
            raise NotEvaluated(f"metric math expression {self.source!r}: {function} takes {arity} arguments")
        if function == "FILL" and not isinstance(args[1], Number | Negate):
            how = args[1].id if isinstance(args[1], Name) else "an expression"
            raise NotEvaluated(f"metric math FILL(..., {how}) (the local cloud fills with a number only)")
        return Call(function, tuple(args))

"""A flat view of `f`'s jaxpr, for the structured-derivatives NTK.

`trace` turns `f(params, x, **kwargs)` into a `Program`: one list of
equations with integer variable ids, where calls to jitted sub-functions
(`jit`/`pjit`, `closed_call`) are inlined so that a parameter can be followed
into them. Primitives with custom derivatives (`custom_jvp_call`, ...) stay
opaque: they are bound as they are, so their custom rules are used.

`Program.evaluate` runs the equations with `Primitive.bind` (what
`jax.core.eval_jaxpr` does), adding a given perturbation to chosen
variables as they are computed. Its derivative with respect to the
perturbation of variable `y` at zero is `df/dy`, the total derivative of the
outputs with respect to that intermediate.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Any, Callable, Sequence

import jax
import jax.extend.core as jex

# Call primitives whose body is inlined (their derivatives are the body's).
_INLINED = ("jit", "pjit", "closed_call", "core_call")


@dataclasses.dataclass(frozen=True)
class Lit:
  """A constant operand (a jaxpr literal or a captured constant)."""
  val: Any


@dataclasses.dataclass
class Eqn:
  """One primitive application; `invars` are ids or `Lit`s."""
  prim: Any
  params: dict
  invars: list
  outvars: list


@dataclasses.dataclass
class Program:
  """`f` as a flat list of equations over integer variable ids.

  Attributes:
    invars: ids of the flat arguments (parameter leaves first).
    eqns: the equations, in evaluation order.
    outvars: ids (or `Lit`s) of the flat outputs.
    avals: id -> abstract value (shape, dtype).
    uses: id -> number of times it is read (outputs count as reads).
    producer: id -> index in `eqns` of the equation computing it.
    consumers: id -> indices of the equations reading it.
  """

  invars: list
  eqns: list
  outvars: list
  avals: dict
  uses: collections.Counter = dataclasses.field(
      default_factory=collections.Counter)
  producer: dict = dataclasses.field(default_factory=dict)
  consumers: dict = dataclasses.field(
      default_factory=lambda: collections.defaultdict(list))

  def __post_init__(self):
    for i, e in enumerate(self.eqns):
      for v in e.outvars:
        self.producer[v] = i
      for v in e.invars:
        if not isinstance(v, Lit):
          self.uses[v] += 1
          if i not in self.consumers[v]:
            self.consumers[v].append(i)
    for v in self.outvars:
      if not isinstance(v, Lit):
        self.uses[v] += 1

  def evaluate(self, args: Sequence, perturb: dict) -> tuple[list, dict]:
    """Outputs and the environment (id -> value) of the program.

    Args:
      args: values of `invars`.
      perturb: id -> array added to that variable once it is computed.
    """
    env = {}

    def write(v, val):
      env[v] = val + perturb[v] if v in perturb else val

    def read(a):
      return a.val if isinstance(a, Lit) else env[a]

    for v, val in zip(self.invars, args):
      write(v, val)
    for e in self.eqns:
      ans = e.prim.bind(*map(read, e.invars),
                        **e.prim.get_bind_params(e.params))
      for v, val in zip(e.outvars, ans if e.prim.multiple_results else [ans]):
        write(v, val)
    return [read(a) for a in self.outvars], env


def trace(fn: Callable[..., Any], *arg_structs) -> Program:
  """The `Program` of `fn(*args)` for arguments shaped like `arg_structs`.

  Arguments and outputs are flattened (pytree leaves, in order).
  """
  closed = jax.make_jaxpr(fn)(*arg_structs)
  counter = iter(range(1 << 62))
  avals, eqns = {}, []

  def fresh(aval):
    v = next(counter)
    avals[v] = aval
    return v

  def walk(jaxpr, consts, in_atoms):
    env = dict(zip(jaxpr.constvars, [Lit(c) for c in consts]))
    env.update(zip(jaxpr.invars, in_atoms))

    def atom(v):
      return Lit(v.val) if isinstance(v, jex.Literal) else env[v]

    for e in jaxpr.eqns:
      ins = [atom(v) for v in e.invars]
      sub = e.params.get("jaxpr", e.params.get("call_jaxpr"))
      if e.primitive.name in _INLINED and sub is not None:
        if isinstance(sub, jex.ClosedJaxpr):
          outs = walk(sub.jaxpr, sub.consts, ins)
        else:
          outs = walk(sub, (), ins)
        env.update(zip(e.outvars, outs))
        continue
      outs = [fresh(v.aval) for v in e.outvars]
      env.update(zip(e.outvars, outs))
      eqns.append(Eqn(e.primitive, e.params, ins, outs))
    return [atom(v) for v in jaxpr.outvars]

  invars = [fresh(v.aval) for v in closed.jaxpr.invars]
  outvars = walk(closed.jaxpr, closed.consts, invars)
  return Program(invars, eqns, outvars, avals)

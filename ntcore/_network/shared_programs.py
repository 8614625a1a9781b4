"""One compiled program per network structure: hyper-parameters as arguments.

Networks that differ only in hyper-parameters (`W_std`, `b_std`, a
nonlinearity's parameters) trace to the same sequence of primitives with
different scalar constants in it: `mul nngp 2.25` for one network,
`mul nngp 2.4` for the next. Compiling each trace bakes those constants in,
so a sweep of 50 networks compiled 50 programs. Here a call's trace
(`jax.make_jaxpr`, which runs the layer rules in Python as `jit` does) is
split into its **structure** (the primitives, their parameters, the shapes
and dtypes of every value) and its **scalar float literals and captured
arrays**; one `jax.jit` program per structure takes the latter as traced
arguments, so every network of that structure reuses it. No layer rule is
changed: the rule runs as written, and only the trace it leaves is read.

Literals inside nested programs (a `scan` body of `repeat`, a
`custom_jvp`'s rule) stay part of the structure, and so do integer and
boolean literals: a network whose hyper-parameters sit there compiles per
value, as before. Captured arrays are arguments too, keyed by shape and
dtype. At most `MAX_PROGRAMS` programs are kept, the least recently used
dropped first.
"""

from __future__ import annotations

import collections
import functools

import jax
import numpy as np
from jax.extend import core as jcore

# Programs kept, least recently used first out (each holds an executable).
MAX_PROGRAMS = 64

_programs: "collections.OrderedDict[tuple, object]" = collections.OrderedDict()


def _is_lifted(v) -> bool:
  """A scalar float literal of an equation, passed as an argument instead."""
  if not isinstance(v, jcore.Literal):
    return False
  aval = getattr(v, "aval", None)
  return (aval is not None and getattr(aval, "shape", None) == ()
          and np.issubdtype(aval.dtype, np.floating))


def _structure(jaxpr) -> tuple:
  """The trace without its lifted literals' values: the program's cache key."""
  index = {}

  def name(v, lift=False):
    if isinstance(v, jcore.Literal):
      if lift and _is_lifted(v):
        return ("lifted", str(v.aval))
      return ("literal", str(v.aval), repr(v.val))
    return index.setdefault(v, (len(index), str(v.aval)))

  for v in (*jaxpr.constvars, *jaxpr.invars):
    name(v)
  eqns = []
  for eqn in jaxpr.eqns:
    eqns.append((str(eqn.primitive),
                 tuple(sorted((k, _param_key(p))
                              for k, p in eqn.params.items())),
                 tuple(name(v, lift=True) for v in eqn.invars),
                 tuple(name(v) for v in eqn.outvars)))
  return tuple(name(v) for v in jaxpr.invars), tuple(eqns), tuple(
      name(v) for v in jaxpr.outvars)


def _param_key(p):
  """An equation parameter as part of the key, arrays by value (not `str`,
  which abbreviates large arrays)."""
  if isinstance(p, jcore.ClosedJaxpr):
    return ("closed", str(p.jaxpr), tuple(_param_key(c) for c in p.consts))
  if isinstance(p, (np.ndarray, jax.Array)):
    a = np.asarray(p)
    return ("array", a.shape, str(a.dtype), a.tobytes())
  if isinstance(p, (tuple, list)):
    return tuple(_param_key(q) for q in p)
  return str(p)


def _literals(jaxpr) -> list:
  return [np.asarray(v.val, v.aval.dtype) for eqn in jaxpr.eqns
          for v in eqn.invars if _is_lifted(v)]


def _evaluate(jaxpr, consts, literals, *args):
  """`jaxpr` of `args`, its lifted literals read from `literals` in order."""
  env = {}

  def read(v):
    return v.val if isinstance(v, jcore.Literal) else env[v]

  for v, x in zip((*jaxpr.constvars, *jaxpr.invars), (*consts, *args)):
    env[v] = x
  lits = iter(literals)
  for eqn in jaxpr.eqns:
    ins = [next(lits) if _is_lifted(v) else read(v) for v in eqn.invars]
    with eqn.ctx.manager:
      outs = eqn.primitive.bind(*ins,
                                **eqn.primitive.get_bind_params(eqn.params))
    if not eqn.primitive.multiple_results:
      outs = [outs]
    for v, x in zip(eqn.outvars, outs):
      if not isinstance(v, jcore.DropVar):
        env[v] = x
  return [read(v) for v in jaxpr.outvars]


class Call:
  """One network's trace for one signature, bound to its shared program."""

  __slots__ = ("program", "consts", "literals", "out_tree", "captures_tracers")

  def __init__(self, fn, args: tuple):
    closed, out_shape = jax.make_jaxpr(fn, return_shape=True)(*args)
    jaxpr = closed.jaxpr
    # A network built from values an outer transformation traces (`grad`
    # over `W_std`, as the marginal-likelihood fit does) captures tracers:
    # such a trace belongs to that transformation alone and is not shared.
    self.captures_tracers = any(isinstance(c, jax.core.Tracer)
                                for c in closed.consts)
    if self.captures_tracers:
      return
    key = (_structure(jaxpr),
           tuple((np.shape(c), str(getattr(c, "dtype", None)
                                   or np.result_type(c)))
                 for c in closed.consts))
    program = _programs.pop(key, None)
    if program is None:
      program = jax.jit(functools.partial(_evaluate, jaxpr))
    _programs[key] = program
    while len(_programs) > MAX_PROGRAMS:
      _programs.popitem(last=False)
    self.program = program
    self.consts = list(closed.consts)
    self.literals = _literals(jaxpr)
    self.out_tree = jax.tree_util.tree_structure(out_shape)

  def __call__(self, args: tuple):
    outs = self.program(self.consts, self.literals,
                        *jax.tree_util.tree_leaves(args))
    return jax.tree_util.tree_unflatten(self.out_tree, outs)

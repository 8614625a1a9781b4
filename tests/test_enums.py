"""NT's layer-option enums: members, `str` behaviour, parsing, and layers
giving the same kernel for a member as for its name (real plugins, as in
test_end_to_end.py)."""

import enum

import jax.numpy as jnp
import numpy as np
import pytest

import ntcore.enums
from ntcore import stax
from ntcore.enums import (AggregateImplementation, AttentionMechanism, Bool,
                          ChoiceError, Padding, PositionalEmbedding, parse)

rng = np.random.default_rng(5)

# NT 0.6.5's stax enums: names and values.
NT_MEMBERS = {
    Padding: ["CIRCULAR", "SAME", "VALID"],
    AttentionMechanism: ["SOFTMAX", "IDENTITY", "ABS", "RELU"],
    PositionalEmbedding: ["NONE", "SUM", "CONCAT"],
    AggregateImplementation: ["DENSE", "SPARSE"],
}


@pytest.mark.parametrize("cls", list(NT_MEMBERS))
def test_members_are_nts_and_behave_as_strings(cls):
  assert [m.name for m in cls] == NT_MEMBERS[cls]
  assert all(m.value == m.name for m in cls)
  first = next(iter(cls))
  assert isinstance(first, str) and first == first.name
  assert str(first) == f"{first}" == first.name
  exported = getattr(stax, cls.__name__, None)
  if exported is not None:  # re-exported from the stax namespace
    assert exported is cls


def test_bool_is_nts_three_valued_and():
  assert [(m.name, int(m)) for m in Bool] == [("NO", 0), ("MAYBE", 1),
                                               ("YES", 2)]
  assert (Bool.YES & Bool.MAYBE) is Bool.MAYBE
  assert (Bool.NO & Bool.YES) is Bool.NO
  assert (Bool.YES & Bool.YES) is Bool.YES
  exported = getattr(stax, "Bool", None)
  if exported is not None:
    assert exported is Bool


class ForeignPadding(enum.Enum):  # another library's enum of the same names
  SAME = "same-padding"


def test_parse_accepts_members_names_in_any_case_and_foreign_members():
  assert parse(Padding, Padding.SAME, "Conv(padding") is Padding.SAME
  assert parse(Padding, "circular", "Conv(padding") is Padding.CIRCULAR
  assert parse(Padding, ForeignPadding.SAME, "Conv(padding") is Padding.SAME
  with pytest.raises(ChoiceError, match=r"Conv\(padding='FULL'\).*'SAME'"):
    parse(Padding, "FULL", "Conv(padding")
  with pytest.raises(ValueError, match="stax.Padding"):
    parse(Padding, 3, "Conv(padding")


def test_attention_mechanism_fn_is_phi():
  x = rng.normal(size=(2, 3))
  e = np.exp(x)
  want = {"SOFTMAX": e / e.sum(-1, keepdims=True), "IDENTITY": x,
          "ABS": np.abs(x), "RELU": np.maximum(x, 0)}
  for m in AttentionMechanism:
    np.testing.assert_allclose(m.fn()(jnp.asarray(x)), want[m.name],
                               rtol=1e-12)
    # Unmasked weights are phi itself.
    np.testing.assert_allclose(m.weights(jnp.asarray(x)), want[m.name],
                               rtol=1e-12)


# --- layers: a member and its name give the same kernel ----------------------

X1 = rng.normal(size=(2, 5, 4, 3))
X2 = rng.normal(size=(3, 5, 4, 3))


def kernel(layer, *args, **kw):
  k = stax.serial(layer, stax.Relu(), stax.Dense(1))[2]
  return np.asarray(k(X1, X2, "ntk", *args, **kw))


@pytest.mark.parametrize("make", [
    lambda p: stax.Conv(2, (3, 2), padding=p),
    lambda p: stax.ConvTranspose(2, (3, 2), padding=p),
    lambda p: stax.ConvLocal(2, (3, 2), padding=p),
    lambda p: stax.serial(stax.Conv(2, (1, 1)), stax.AvgPool((2, 2), padding=p)),
])
def test_padding_member_and_name_give_one_kernel(make):
  member = kernel(make(Padding.CIRCULAR))
  np.testing.assert_array_equal(member, kernel(make("CIRCULAR")))
  np.testing.assert_array_equal(member, kernel(make("circular")))
  # ... and the option is really read: SAME padding gives another kernel.
  assert not np.allclose(member, kernel(make(Padding.SAME)))


def test_maxpool_takes_a_padding_member():
  x = rng.normal(size=(1, 4, 4, 1))
  by_member = stax.MaxPool((3, 3), padding=Padding.SAME)[1]((), x)
  by_name = stax.MaxPool((3, 3), padding="SAME")[1]((), x)
  np.testing.assert_array_equal(by_member, by_name)
  assert by_member.shape == (1, 4, 4, 1)
  with pytest.raises(ValueError, match="padding"):
    stax.MaxPool((2, 2), padding="FULL")


def attention(**kw):
  layer = stax.GlobalSelfAttention(n_chan_out=4, n_chan_key=4, n_chan_val=4,
                                   n_heads=2, **kw)
  k = stax.serial(stax.Dense(4), layer, stax.Flatten(), stax.Dense(1))[2]
  return np.asarray(k(X1[:, :, 0], X2[:, :, 0], "ntk"))


def test_attention_options_member_and_name_give_one_kernel():
  member = attention(attention_mechanism=AttentionMechanism.RELU,
                     pos_emb_type=PositionalEmbedding.CONCAT)
  np.testing.assert_array_equal(
      member, attention(attention_mechanism="RELU", pos_emb_type="CONCAT"))
  np.testing.assert_array_equal(
      member, attention(attention_mechanism="relu", pos_emb_type="concat"))
  assert not np.allclose(member, attention(attention_mechanism="RELU"))
  assert not np.allclose(member, attention(pos_emb_type="CONCAT"))
  with pytest.raises(ChoiceError, match="'SOFTMAX', 'IDENTITY'"):
    stax.GlobalSelfAttention(4, 4, 4, 2, attention_mechanism="GELU")


def test_aggregate_implementation_member_and_name_give_one_kernel():
  x1, x2 = rng.normal(size=(2, 4, 3)), rng.normal(size=(3, 4, 3))
  arcs1 = rng.integers(0, 4, size=(2, 6, 2))
  arcs2 = rng.integers(0, 4, size=(3, 6, 2))

  def nngp(impl, p1, p2):
    return np.asarray(stax.Aggregate(implementation=impl)[2](
        x1, x2, "nngp", pattern=(p1, p2)))

  member = nngp(AggregateImplementation.SPARSE, arcs1, arcs2)
  np.testing.assert_array_equal(member, nngp("SPARSE", arcs1, arcs2))
  np.testing.assert_array_equal(member, nngp("sparse", arcs1, arcs2))

  def dense(arcs):  # the same graphs as adjacency tensors
    adj = np.zeros((arcs.shape[0], 4, 4))
    for n, arc in enumerate(arcs):
      np.add.at(adj[n], (arc[:, 0], arc[:, 1]), 1.)
    return adj

  np.testing.assert_allclose(
      nngp(AggregateImplementation.DENSE, dense(arcs1), dense(arcs2)), member,
      rtol=1e-12)
  with pytest.raises(ChoiceError, match="'DENSE' or 'SPARSE'"):
    stax.Aggregate(implementation="CSR")


def test_the_module_lists_what_it_defines():
  for name in ntcore.enums.__all__:
    assert hasattr(ntcore.enums, name)

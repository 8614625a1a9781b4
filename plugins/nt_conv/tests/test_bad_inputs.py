"""Convolutions and pooling: misfit sizes and inputs are one clear ShapeError.

Before these checks: an all-NaN kernel for a VALID window larger than the
input, `ZeroDivisionError` for a zero stride, `IndexError` for inputs of the
wrong rank, and silently unpooled kernels for a rank-2 input to AvgPool.
"""

import jax
import numpy as np
import pytest

from ntcore import ShapeError, stax

X = np.random.default_rng(0).normal(size=(2, 5, 5, 3))
KEY = jax.random.PRNGKey(0)


def nngp(layer, x):
  return layer[2](x, None, "nngp")


@pytest.mark.parametrize("make, what", [
    (lambda: stax.Conv(4, (7, 7)), "Conv: filter_shape (7, 7)"),
    (lambda: stax.Conv(4, (2, 6), strides=(2, 2)), "Conv: filter_shape (2, 6)"),
    (lambda: stax.ConvLocal(4, (7, 7)), "ConvLocal: filter_shape (7, 7)"),
    (lambda: stax.AvgPool((6, 1)), "AvgPool: window_shape (6, 1)"),
    (lambda: stax.SumPool((7, 7)), "SumPool: window_shape (7, 7)"),
])
def test_valid_window_larger_than_the_input(make, what):
  layer = make()
  for run in (lambda: nngp(layer, X), lambda: layer[0](KEY, X.shape)):
    with pytest.raises(ShapeError) as info:
      run()
    msg = str(info.value)
    assert msg.startswith(what) and "larger than the input's spatial shape " \
        "(5, 5) with padding='VALID'" in msg and "padding='SAME'" in msg


def test_same_padding_with_a_large_window_is_fine():
  k = nngp(stax.serial(stax.Conv(2, (7, 7), padding="SAME"),
                       stax.AvgPool((7, 7), padding="SAME")), X)
  assert np.isfinite(np.asarray(k)).all()


@pytest.mark.parametrize("make, what", [
    (lambda: stax.Conv(3, (2, 2), strides=(0, 1)), "Conv: strides (0, 1)"),
    (lambda: stax.ConvTranspose(3, (2, 2), strides=(1, -1)),
     "ConvTranspose: strides (1, -1)"),
    (lambda: stax.ConvLocal(3, (2, 2), strides=(0, 0)),
     "ConvLocal: strides (0, 0)"),
    (lambda: stax.AvgPool((2, 2), strides=(0, 1)), "AvgPool: strides (0, 1)"),
    (lambda: stax.Conv(3, (0, 2)), "Conv: filter_shape (0, 2)"),
    (lambda: stax.SumPool((2, -1)), "SumPool: window_shape (2, -1)"),
    (lambda: stax.Conv(3, (2.5, 2)), "Conv: filter_shape (2.5, 2)"),
])
def test_non_positive_sizes_fail_when_the_layer_is_built(make, what):
  with pytest.raises(ShapeError) as info:
    make()
  assert str(info.value).startswith(what)
  assert "must hold positive integers" in str(info.value)


def test_strides_of_the_wrong_length():
  with pytest.raises(ShapeError, match=r"AvgPool: strides \(1,\) and "
                     r"window_shape \(2, 2\) have different lengths"):
    stax.AvgPool((2, 2), strides=(1,))
  with pytest.raises(ShapeError, match="one stride per filter axis"):
    stax.Conv(2, (2, 2), strides=(1, 1, 1))


def test_a_2d_array_fed_to_a_conv_network_says_the_layout():
  net = stax.serial(stax.Conv(4, (3, 3)), stax.Relu(), stax.Flatten(),
                    stax.Dense(1))
  with pytest.raises(ShapeError) as info:
    net[2](X[:, :, 0, 0], None, "nngp")
  msg = str(info.value)
  assert msg.startswith("Conv expects inputs of rank 4")
  assert "NHWC" in msg and "got an input of shape (2, 5) (rank 2)" in msg
  with pytest.raises(ShapeError, match="Conv expects inputs of rank 4"):
    net[0](KEY, (2, 5))


def test_wrong_rank_in_apply_fn_and_after_a_dense_layer():
  conv = stax.Conv(4, (3, 3))
  _, params = conv[0](KEY, X.shape)
  with pytest.raises(ShapeError, match=r"shape \(2, 5, 5\) \(rank 3\).*"
                     "filter_shape of length 1"):
    conv[1](params, X[..., 0])
  net = stax.serial(stax.Dense(3), stax.Conv(4, (3, 3)))
  with pytest.raises(ShapeError, match="Conv expects inputs of rank 4"):
    net[2](X[:, :, 0, 0], None, "nngp")


def test_too_many_axes_for_a_1d_conv():
  with pytest.raises(ShapeError, match=r"Conv expects inputs of rank 3 laid "
                     r"out as 'NAC'.*Remove the extra axes"):
    nngp(stax.Conv(3, (2,)), X)


@pytest.mark.parametrize("make", [lambda: stax.AvgPool((2, 2)),
                                  lambda: stax.SumPool((2, 2))])
def test_pooling_a_2d_array_is_an_error_not_a_no_op(make):
  net = stax.serial(stax.Dense(3), make())
  with pytest.raises(ShapeError) as info:
    net[2](X[:, :, 0, 0], None, "nngp")
  assert "expects inputs of rank 4 laid out as 'NHWC'" in str(info.value)


def test_pooling_layout_follows_batch_and_channel_axes():
  pool = stax.AvgPool((2,), batch_axis=1, channel_axis=0)
  with pytest.raises(ShapeError, match="laid out as 'CNW'"):
    pool[0](KEY, (3, 2, 5, 5))
  assert pool[0](KEY, (3, 2, 5))[0] == (3, 2, 4)


def test_a_rank_3_input_to_a_2d_conv_network_names_the_layout():
  # Was "batch_axis and channel_axis are both 0": channel axis 3 of NHWC
  # wrapped onto the batch axis of a rank-3 input.
  net = stax.serial(stax.Conv(4, (3, 3)), stax.Relu())
  with pytest.raises(ShapeError) as info:
    net[2](X[..., 0], None, "nngp")
  msg = str(info.value)
  assert msg.startswith("Conv expects inputs of rank 4") and "NHWC" in msg
  assert "(2, 5, 5) (rank 3)" in msg and "x[..., None]" in msg


def test_channels_first_conv_keeps_its_kernel():
  nchw = stax.Conv(3, (3, 2), dimension_numbers=("NCHW", "OIHW", "NCHW"))
  nhwc = stax.Conv(3, (3, 2))
  got = nngp(nchw, np.moveaxis(X, -1, 1))
  want = nngp(nhwc, X)
  np.testing.assert_allclose(got, want, rtol=1e-12)

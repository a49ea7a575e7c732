"""BN-aware train step: one SGD step equals the manual update, running statistics follow the momentum
rule, and the step runs inside ``fit``; the eval step uses running statistics."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from sparsejax.nn import BNCNN
from sparsejax.train import BNTrainState, evaluate, fit, make_bn_eval_step, make_bn_train_step


def test_bn_step_matches_manual_update_and_momentum():
    model = BNCNN(3, channels=(4, 5), momentum=0.9)
    x = jax.random.normal(jax.random.PRNGKey(0), (6, 8, 8, 1))
    y = jnp.array([0, 1, 2, 0, 1, 2])
    variables = jax.jit(model.init)(jax.random.PRNGKey(1), x)
    tx = optax.sgd(0.1)
    state = BNTrainState.create(variables, tx)
    new, loss = make_bn_train_step(model, tx)(state, x, y)

    def loss_of(p):
        logits, _ = model.apply({"params": p, "batch_stats": variables["batch_stats"]}, x, train=True,
                                mutable=["batch_stats"])
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    ref_loss, grads = jax.value_and_grad(loss_of)(variables["params"])
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-5)
    jax.tree_util.tree_map(lambda a, b, g: np.testing.assert_allclose(a, b - 0.1 * g, rtol=1e-5, atol=1e-6),
                           new.params, variables["params"], grads)
    h = jax.lax.conv_general_dilated(x, variables["params"]["conv_0"]["kernel"], (1, 1), "VALID",
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
    np.testing.assert_allclose(new.batch_stats["bn_0"]["mean"], 0.1 * h.mean(axis=(0, 1, 2)), rtol=1e-4, atol=1e-6)
    assert int(new.step) == 1

    trained, losses = fit(make_bn_train_step(model, tx), state, x, y, steps=3, batch_size=6,
                          key=jax.random.PRNGKey(2))
    assert int(trained.step) == 3 and len(losses) == 3
    ev = evaluate(make_bn_eval_step(model), trained.variables, np.asarray(x), np.asarray(y))
    logits = model.apply(trained.variables, x, train=False)
    assert ev["accuracy"] == pytest.approx(float(jnp.mean(jnp.argmax(logits, -1) == y)))


def test_bn_state_needs_batch_stats():
    with pytest.raises(ValueError, match="batch_stats"):
        BNTrainState.create({"params": {}}, optax.sgd(0.1))

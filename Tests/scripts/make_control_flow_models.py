#!/usr/bin/env python3
"""Control flow that sofie unrolls or inlines at compile time (the inline-control-flow pass),
beyond ONNX's node tests: Scan with reversed scan inputs and outputs, scan axes other than 0
(negative too), two scan inputs and two scan outputs, a body with its own initializer that also
reads a value of the enclosing graph and holds an If whose condition is a constant; an If with
a constant condition at the top level whose branch reads outer values; a Loop of a constant
trip count with a carried value and a scan output; an If on a run-time condition (both
branches computed, Where selects; a data set per branch).

References come from ONNX Runtime (one thread; ONNX's reference evaluator does not run
reversed scan directions). Writes each model in the
layout of ONNX's node tests: OUTDIR/NAME/{model.onnx, test_data_set_0/{input_K.pb, output_K.pb}}.
Usage: make_control_flow_models.py OUTDIR"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np
import onnx
from onnx import TensorProto as T, helper as h, numpy_helper as nh

import node_test_layout as layout
from node_test_layout import vi

out_dir = sys.argv[1]
rng = np.random.default_rng(20261203)


def save(name, nodes, inputs, outputs, feeds, initializers=(), opset=21):
    layout.save(out_dir, name, nodes, inputs, outputs, feeds, initializers, opset)


# A recurrent cell as a Scan body: state s (4), inputs a (3) and b (4) per step;
# s' = tanh(W a + s * b + bias) + outer_shift, with an If (constant true) choosing Relu over
# Sigmoid for the second scan output. W and bias are the body's own initializers; outer_shift
# is the enclosing graph's.
W = rng.standard_normal((4, 3)).astype(np.float32)
bias = rng.standard_normal(4).astype(np.float32)
then_g = h.make_graph([h.make_node("Relu", ["s_new"], ["r"])], "then", [], [vi("r", T.FLOAT, [4])])
else_g = h.make_graph([h.make_node("Sigmoid", ["s_new"], ["r2"])], "else", [], [vi("r2", T.FLOAT, [4])])
body = h.make_graph([
    h.make_node("MatMul", ["W", "a_t"], ["wa"]),
    h.make_node("Mul", ["s", "b_t"], ["sb"]),
    h.make_node("Add", ["wa", "sb"], ["z"]),
    h.make_node("Add", ["z", "bias"], ["zb"]),
    h.make_node("Tanh", ["zb"], ["th"]),
    h.make_node("Add", ["th", "outer_shift"], ["s_new"]),
    h.make_node("If", ["flag"], ["act"], then_branch=then_g, else_branch=else_g),
    h.make_node("Identity", ["s_new"], ["y1"]),
], "cell", [vi("s", T.FLOAT, [4]), vi("a_t", T.FLOAT, [3]), vi("b_t", T.FLOAT, [4])],
    [vi("s_out", T.FLOAT, [4]), vi("y1", T.FLOAT, [4]), vi("act", T.FLOAT, [4])],
    initializer=[nh.from_array(W, "W"), nh.from_array(bias, "bias"), nh.from_array(np.array(True), "flag")])
body.node[-1].output[0] = "y1"
body.node[5].output[0] = "s_new"
# The state output is s_new itself.
body.output[0].name = "s_new"
save("scan_cell_reversed_axes", [
    h.make_node("Scan", ["s0", "a", "b"], ["s_final", "ys", "acts"], body=body, num_scan_inputs=2,
                scan_input_axes=[1, -2], scan_input_directions=[1, 0], scan_output_axes=[-1, 0], scan_output_directions=[0, 1]),
], [vi("s0", T.FLOAT, [4]), vi("a", T.FLOAT, [3, 5]), vi("b", T.FLOAT, [5, 4]), vi("outer_shift", T.FLOAT, [4])],
    [vi("s_final", T.FLOAT, [4]), vi("ys", T.FLOAT, [4, 5]), vi("acts", T.FLOAT, [5, 4])],
    {"s0": rng.standard_normal(4).astype(np.float32), "a": rng.standard_normal((3, 5)).astype(np.float32),
     "b": rng.standard_normal((5, 4)).astype(np.float32), "outer_shift": rng.standard_normal(4).astype(np.float32)})

# A cumulative sum and running maximum over 7 steps of (2, 3) slices, in opset 11 (Unsqueeze with
# an axes attribute in the unrolled graph).
body2 = h.make_graph([
    h.make_node("Add", ["acc", "x_t"], ["acc2"]),
    h.make_node("Max", ["mx", "x_t"], ["mx2"]),
    h.make_node("Identity", ["acc2"], ["out_t"]),
], "sums", [vi("acc", T.FLOAT, [2, 3]), vi("mx", T.FLOAT, [2, 3]), vi("x_t", T.FLOAT, [2, 3])],
    [vi("acc2", T.FLOAT, [2, 3]), vi("mx2", T.FLOAT, [2, 3]), vi("out_t", T.FLOAT, [2, 3])])
save("scan_running_sum_opset11", [
    h.make_node("Scan", ["acc0", "mx0", "x"], ["acc", "mx", "outs"], body=body2, num_scan_inputs=1, scan_output_axes=[2]),
], [vi("acc0", T.FLOAT, [2, 3]), vi("mx0", T.FLOAT, [2, 3]), vi("x", T.FLOAT, [7, 2, 3])],
    [vi("acc", T.FLOAT, [2, 3]), vi("mx", T.FLOAT, [2, 3]), vi("outs", T.FLOAT, [2, 3, 7])],
    {"acc0": np.zeros((2, 3), np.float32), "mx0": np.full((2, 3), -1e9, np.float32), "x": rng.standard_normal((7, 2, 3)).astype(np.float32)},
    opset=11)

# If with a constant condition (false): the else branch, which reads the graph input x and has
# two outputs.
then_b = h.make_graph([h.make_node("Neg", ["x"], ["n"]), h.make_node("Abs", ["x"], ["m"])], "t", [],
                      [vi("n", T.FLOAT, [2, 5]), vi("m", T.FLOAT, [2, 5])])
else_b = h.make_graph([h.make_node("Exp", ["x"], ["e"]), h.make_node("ReduceSum", ["x", "ax"], ["s"], keepdims=1)], "e", [],
                      [vi("e", T.FLOAT, [2, 5]), vi("s", T.FLOAT, [2, 1])],
                      initializer=[nh.from_array(np.array([1], np.int64), "ax")])
save("if_constant_condition", [
    h.make_node("If", ["c"], ["y", "z"], then_branch=then_b, else_branch=else_b),
], [vi("x", T.FLOAT, [2, 5])], [vi("y", T.FLOAT, [2, 5]), vi("z", T.FLOAT, [2, 1])],
    {"x": rng.standard_normal((2, 5)).astype(np.float32)}, [nh.from_array(np.array([False]), "c")])

# Loop of a constant trip count (5) with a constant-true condition, as exporters write a
# `for` loop: a carried value v = 0.9 v + x[i] (x read from the enclosing graph at the
# iteration number) and a scan output (v after each iteration, stacked).
loop_body = h.make_graph([
    h.make_node("Gather", ["x", "i"], ["xi"], axis=0),
    h.make_node("Mul", ["v", "decay"], ["vd"]),
    h.make_node("Add", ["vd", "xi"], ["v_out"]),
    h.make_node("Identity", ["cond"], ["cond_out"]),
    h.make_node("Identity", ["v_out"], ["v_scan"]),
], "body", [vi("i", T.INT64, []), vi("cond", T.BOOL, []), vi("v", T.FLOAT, [3])],
    [vi("cond_out", T.BOOL, []), vi("v_out", T.FLOAT, [3]), vi("v_scan", T.FLOAT, [3])],
    initializer=[nh.from_array(np.array(0.9, np.float32), "decay")])
save("loop_constant_trips", [
    h.make_node("Loop", ["M", "c", "v0"], ["v_final", "vs"], body=loop_body),
], [vi("v0", T.FLOAT, [3]), vi("x", T.FLOAT, [5, 3])], [vi("v_final", T.FLOAT, [3]), vi("vs", T.FLOAT, [5, 3])],
    {"v0": rng.standard_normal(3).astype(np.float32), "x": rng.standard_normal((5, 3)).astype(np.float32)},
    [nh.from_array(np.array(5, np.int64), "M"), nh.from_array(np.array(True), "c")], opset=17)

# If on a run-time condition whose branches give outputs of one shape: both computed, Where
# selects; two data sets, one per branch.
then_r = h.make_graph([h.make_node("Mul", ["x", "two"], ["t"])], "t", [], [vi("t", T.FLOAT, [2, 3])],
                      initializer=[nh.from_array(np.array(2, np.float32), "two")])
else_r = h.make_graph([h.make_node("Sigmoid", ["x"], ["e"])], "e", [], [vi("e", T.FLOAT, [2, 3])])
x_if = rng.standard_normal((2, 3)).astype(np.float32)
save("if_runtime_condition", [
    h.make_node("If", ["c"], ["y"], then_branch=then_r, else_branch=else_r),
], [vi("c", T.BOOL, [1]), vi("x", T.FLOAT, [2, 3])], [vi("y", T.FLOAT, [2, 3])],
    [{"c": np.array([True]), "x": x_if}, {"c": np.array([False]), "x": x_if}])

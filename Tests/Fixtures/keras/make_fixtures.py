#!/usr/bin/env python3
"""Builds the Keras fixtures: small models that together cover the supported layers and
options, with seeded random non-trivial weights (non-zero biases, BatchNormalization
statistics far from 0/1). Each model is saved as Keras 3 `.keras`, Keras 3 `.h5` and Keras 2
(tf-keras) `.h5`, next to a fixed input batch (batch 3) and the outputs Keras itself computes
(Keras 3 and tf-keras each for their own files). Raw little-endian float32 files plus meta.json.
Needs: pip install keras tensorflow-cpu tf-keras (only to regenerate; tests do not).
Usage: make_fixtures.py [OUTDIR] [--only NAME]"""
import json
import zlib
import os
import sys
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
import numpy as np
import keras
import tf_keras

OUT = sys.argv[1] if len(sys.argv) > 1 and not sys.argv[1].startswith("--") else os.path.dirname(os.path.abspath(__file__))
ONLY = sys.argv[sys.argv.index("--only") + 1] if "--only" in sys.argv else None
BATCH = 3


def models(K):
    """name -> (builder, input shapes, input kind). K is keras (3) or tf_keras (2)."""
    L = K.layers
    out = {}

    def seq(name, shape, layers):
        out[name] = (lambda: K.Sequential([K.Input(shape)] + layers(), name=name), [shape], "float")

    def fn(name, shapes, body, kind="float"):
        def build():
            ins = [K.Input(s, name=f"in{i}", dtype="int32" if kind in ("int", "tokens") else "float32") for i, s in enumerate(shapes)]
            outs = body(ins if len(ins) > 1 else ins[0])
            return K.Model(ins if len(ins) > 1 else ins[0], outs, name=name)
        out[name] = (build, shapes, kind)

    seq("mlp", (20,), lambda: [L.Dense(16, activation="relu"), L.Dense(8, activation="tanh"), L.Dense(5, activation="softmax")])
    fn("cnn", [(32, 32, 3)], lambda x: L.Dense(10, name="fc")(L.Flatten()(L.MaxPooling2D(name="pool2")(
        L.Conv2D(8, 3, name="conv2")(L.MaxPooling2D(name="pool1")(L.ReLU(name="relu1")(
            L.BatchNormalization(name="bn1")(L.Conv2D(6, 3, padding="same", name="conv1")(x)))))))))
    seq("conv2d_options", (17, 15, 4), lambda: [L.Conv2D(6, 3, strides=2, padding="valid", activation="elu"),
                                                 L.Conv2D(6, (3, 2), dilation_rate=2, padding="same", activation="sigmoid"),
                                                 L.Conv2D(4, 1, groups=2, use_bias=False, activation="selu"),
                                                 L.Conv2D(4, 5, strides=(2, 1), padding="same", activation="softplus")])
    # TensorFlow's CPU kernels cannot run channels_first convolutions: this fixture is made with
    # the JAX backend (KERAS_BACKEND=jax make_fixtures.py --only conv2d_channels_first), Keras 3 only.
    if K is keras and keras.backend.backend() != "tensorflow":
        seq("conv2d_channels_first", (4, 12, 10), lambda: [
            L.Conv2D(5, 3, padding="same", data_format="channels_first", activation="relu"),
            L.MaxPooling2D(data_format="channels_first"), L.Conv2D(3, 3, data_format="channels_first"),
            L.BatchNormalization(axis=1), L.GlobalAveragePooling2D(data_format="channels_first"), L.Dense(4)])
    seq("depthwise_separable", (16, 16, 4), lambda: [L.DepthwiseConv2D(3, depth_multiplier=2, padding="same", activation="relu"),
                                                      L.SeparableConv2D(6, 3, strides=2, padding="valid", activation="tanh"),
                                                      L.DepthwiseConv2D(3, use_bias=False), L.GlobalAveragePooling2D()])
    seq("conv1d_pooling", (24, 5), lambda: [L.Conv1D(6, 3, padding="same", activation="relu"), L.MaxPooling1D(2),
                                             L.Conv1D(6, 3, padding="causal", dilation_rate=2), L.AveragePooling1D(3, strides=2, padding="same"),
                                             L.Conv1D(4, 2, strides=2), L.GlobalMaxPooling1D()])
    seq("pool2d", (15, 14, 3), lambda: [L.AveragePooling2D(3, strides=2, padding="same"), L.MaxPooling2D(2, strides=1, padding="same"),
                                         L.AveragePooling2D(2), L.GlobalMaxPooling2D()])
    fn("global_pool_1d", [(10, 6)], lambda x: L.Concatenate()([L.GlobalAveragePooling1D()(x), L.GlobalMaxPooling1D()(x)]))
    fn("merge", [(12,), (12,)], lambda xs: L.Concatenate(name="cat")([
        L.Add()(xs), L.Subtract()(xs), L.Multiply()(xs), L.Average()(xs), L.Maximum()(xs), L.Minimum()(xs)]))

    def resblock(x):
        y = L.Conv2D(8, 3, padding="same", name="c0")(x)
        for i in range(2):
            z = L.Conv2D(8, 3, padding="same", name=f"c{i}a")(y)
            z = L.BatchNormalization(name=f"b{i}")(z)
            z = L.Activation("relu")(z)
            z = L.Conv2D(8, 3, padding="same", name=f"c{i}b")(z)
            y = L.Activation("relu")(L.Add()([y, z]))
        return L.Dense(3)(L.GlobalAveragePooling2D()(y))
    fn("resnet_block", [(12, 12, 3)], resblock)

    def mobilenet(x):
        y = L.ReLU(6.0)(L.BatchNormalization()(L.Conv2D(8, 3, strides=2, padding="same", use_bias=False)(x)))
        z = L.ReLU(6.0)(L.BatchNormalization()(L.Conv2D(16, 1, use_bias=False)(y)))
        z = L.ReLU(6.0)(L.BatchNormalization()(L.DepthwiseConv2D(3, padding="same", use_bias=False)(z)))
        z = L.BatchNormalization()(L.Conv2D(8, 1, use_bias=False)(z))
        return L.Dense(4, activation="softmax")(L.GlobalAveragePooling2D()(L.Add()([y, z])))
    fn("mobilenet_block", [(16, 16, 3)], mobilenet)
    acts = ["relu", "relu6", "sigmoid", "tanh", "softmax", "softplus", "softsign", "elu", "selu", "swish", "linear", "exponential"]
    if K is keras:
        acts += ["gelu", "mish", "log_softmax", "silu", "hard_sigmoid", "leaky_relu"]
    else:
        acts += ["gelu", "hard_sigmoid"]
    fn("activations", [(9,)], lambda x: L.Concatenate()([L.Activation(a)(L.Dense(6, name=f"d_{a}")(x)) for a in acts]))
    seq("relu_variants", (10,), lambda: [L.Dense(12), L.ReLU(max_value=2.0, negative_slope=0.1, threshold=0.3), L.Dense(12),
                                          L.LeakyReLU(), L.Dense(12), L.ELU(alpha=0.7), L.Dense(12), L.PReLU(), L.Dense(6), L.Softmax()])
    seq("softmax_axis", (4, 5), lambda: [L.Dense(6), L.Softmax(axis=1)])
    seq("reshape_permute", (6, 4), lambda: [L.Reshape((4, 6)), L.Permute((2, 1)), L.Dense(5), L.Flatten(), L.RepeatVector(3),
                                             L.Reshape((3, 5, 6)), L.Permute((3, 1, 2)), L.Flatten(), L.Dense(4)])
    seq("padding_cropping", (9, 8, 3), lambda: [L.ZeroPadding2D(((1, 2), (3, 0))), L.Conv2D(4, 3), L.Cropping2D(((1, 0), (2, 1))),
                                                 L.UpSampling2D(2), L.Conv2D(3, 3), L.UpSampling2D((1, 2), interpolation="bilinear"),
                                                 L.GlobalAveragePooling2D()])
    seq("padding_1d", (10, 4), lambda: [L.ZeroPadding1D((2, 1)), L.Conv1D(5, 3), L.Cropping1D((1, 2)), L.UpSampling1D(3), L.Flatten()])
    seq("normalizations", (8, 6), lambda: [L.LayerNormalization(), L.Dense(10), L.BatchNormalization(), L.Dense(4),
                                            L.LayerNormalization(center=False), L.Flatten(), L.BatchNormalization(scale=False)])
    seq("dropouts", (10, 10, 3), lambda: [L.Conv2D(4, 3), L.SpatialDropout2D(0.3), L.Dropout(0.5), L.GaussianNoise(0.2),
                                           L.GaussianDropout(0.3), L.AlphaDropout(0.1), L.Flatten(), L.Dense(3)])
    seq("rescaling", (12,), lambda: [L.Rescaling(0.5, offset=-1.0), L.Dense(6, activation="relu"), L.Dense(2)])
    fn("embedding", [(7,)], lambda x: L.Dense(3)(L.GlobalAveragePooling1D()(L.Embedding(20, 6)(x))), kind="int")
    seq("simple_rnn", (7, 4), lambda: [L.SimpleRNN(6, return_sequences=True), L.SimpleRNN(5, go_backwards=True), L.Dense(3)])
    seq("lstm", (6, 5), lambda: [L.LSTM(7, return_sequences=True), L.LSTM(4), L.Dense(2)])
    seq("gru", (6, 5), lambda: [L.GRU(6, return_sequences=True), L.GRU(4, reset_after=False), L.Dense(2)])
    seq("bidirectional", (5, 4), lambda: [L.Bidirectional(L.LSTM(5)), L.Dense(3)])
    seq("bidirectional_gru", (5, 4), lambda: [L.Bidirectional(L.GRU(3), merge_mode="sum"), L.Dense(2)])
    seq("recurrent_sequences", (6, 3), lambda: [L.LSTM(4, return_sequences=True, go_backwards=True),
                                                 L.Bidirectional(L.GRU(3, return_sequences=True), merge_mode="concat"),
                                                 L.Bidirectional(L.SimpleRNN(2, return_sequences=True), merge_mode="ave"),
                                                 L.Flatten(), L.Dense(2)])

    def nested(x):
        inner = K.Sequential([K.Input((10,)), L.Dense(8, activation="relu", name="inner_a"), L.Dense(6, name="inner_b")], name="inner")
        return L.Dense(3, name="head")(L.Concatenate()([inner(x), x]))
    fn("nested_sequential", [(10,)], nested)
    seq("conv_transpose", (6, 6, 3), lambda: [L.Conv2DTranspose(4, 3, strides=2, padding="same", activation="relu"),
                                               L.Conv2DTranspose(2, 2, strides=1, padding="valid"), L.Flatten()])

    seq("conv3d", (6, 8, 8, 2), lambda: [L.Conv3D(4, 3, padding="same", activation="relu"), L.MaxPooling3D(2),
                                          L.Conv3D(3, (1, 2, 2), strides=(1, 2, 1)), L.AveragePooling3D((1, 2, 2), padding="same"),
                                          L.GlobalAveragePooling3D()])
    seq("conv1d_options", (20, 3), lambda: [L.Conv1D(4, 5, strides=2, padding="same", activation="selu"),
                                             L.Conv1D(4, 3, dilation_rate=2, padding="same"), L.SpatialDropout1D(0.2),
                                             L.UpSampling1D(2), L.Conv1D(2, 1, use_bias=False), L.Flatten()])
    seq("depthwise_strided", (15, 13, 3), lambda: [L.DepthwiseConv2D((3, 2), strides=2, depth_multiplier=3, padding="same"),
                                                    L.DepthwiseConv2D(2, dilation_rate=2, padding="same", activation="relu6"),
                                                    L.SeparableConv2D(4, 2, depth_multiplier=2, padding="same", use_bias=False),
                                                    L.GlobalMaxPooling2D(keepdims=True), L.Flatten()])
    seq("recurrent_activations", (5, 3), lambda: [L.LSTM(4, recurrent_activation="hard_sigmoid", return_sequences=True),
                                                   L.GRU(3, go_backwards=True, return_sequences=True, activation="relu"),
                                                   L.SimpleRNN(2, activation="relu", go_backwards=True)])
    seq("identity_regularization", (8,), lambda: [L.Dense(6), L.ActivityRegularization(l1=0.01), L.Dense(4), L.Activation("relu")]
        + ([L.Identity()] if K is keras else []) + [L.Dense(2, activation="sigmoid")])
    seq("dense_3d", (4, 7), lambda: [L.Dense(5, activation="gelu"), L.Dense(3, use_bias=False), L.GlobalAveragePooling1D()])
    seq("channels_pool", (9, 9, 4), lambda: [L.MaxPooling2D(3, strides=2), L.AveragePooling2D(2, strides=1, padding="same"),
                                              L.Conv2D(2, 1, activation="hard_sigmoid"), L.Flatten()])

    def nested_functional(x):
        i = K.Input((8,), name="sub_in")
        h = L.Dense(6, activation="tanh", name="sub_a")(i)
        sub = K.Model(i, L.Add(name="sub_add")([L.Dense(6, name="sub_b")(h), h]), name="sub")
        return L.Dense(2, name="top")(sub(L.Dense(8, name="pre")(x)))
    fn("nested_functional", [(5,)], nested_functional)

    def two_branch_cnn(x):
        a = L.Conv2D(4, 3, padding="same", activation="relu")(x)
        b = L.Conv2D(4, 1, activation="relu")(x)
        c = L.Concatenate(axis=-1)([a, b])
        d = L.BatchNormalization(axis=3, center=False)(c)
        return L.Dense(3)(L.GlobalAveragePooling2D()(L.Maximum()([d, L.Conv2D(8, 3, padding="same")(c)])))
    fn("two_branch_cnn", [(10, 10, 2)], two_branch_cnn)
    seq("upsampling_variants", (4, 5, 2), lambda: [L.UpSampling2D((2, 3)), L.Conv2D(2, 3, padding="same"),
                                                    L.UpSampling2D(2, interpolation="bilinear"), L.Cropping2D(2), L.Flatten()])
    seq("leaky_prelu_shared", (6, 6, 3), lambda: [L.Conv2D(4, 3), L.PReLU(shared_axes=[1, 2]), L.Conv2D(3, 3), L.LeakyReLU(),
                                                   L.Flatten(), L.Dense(2, activation="softsign")])

    def multi_out(xs):
        h = L.Dense(8, activation="relu", name="shared")
        a, b = h(xs[0]), h(xs[1])
        return [L.Dense(2, name="out_a")(L.Add()([a, b])), L.Dense(3, name="out_b")(L.Multiply()([a, b]))]
    fn("shared_multi_io", [(6,), (6,)], multi_out)

    def input_order():
        # Declared inputs [b, a] and outputs [head, diff], each in the opposite order of the
        # layer list: sofie must keep Keras' order (inputs fed by position) and names.
        a, b = K.Input((4,), name="a"), K.Input((6,), name="b")
        diff = L.Subtract(name="diff")([L.Dense(3, name="da")(a), L.Dense(3, name="db")(b)])
        return K.Model(inputs=[b, a], outputs=[L.Dense(2, name="head")(diff), diff], name="input_order")
    out["input_order"] = (input_order, [(6,), (4,)], "float")

    def keras_ops():
        # keras.ops calls recorded as operation nodes (module keras.src.ops.*), as in
        # MobileNetV3's hard-swish (x * relu6(x + 3) / 6) and attention-style code.
        from keras import ops
        x, y = K.Input((4, 5), name="x"), K.Input((4, 5), name="y")
        h = L.Dense(5, name="proj")(x)
        hs = h * ops.relu6(h + 3.0) * (1.0 / 6.0)
        att = ops.softmax(ops.matmul(h, ops.transpose(y, (0, 2, 1))) / 2.0, axis=-1)
        mixed = ops.matmul(att, y)
        e = [2.0 - hs, ops.maximum(hs, 0.5) - ops.minimum(x, y), ops.sigmoid(h) + ops.hard_sigmoid(y) + ops.hard_silu(x),
             ops.silu(h) + ops.gelu(y) + ops.gelu(x, approximate=False) + ops.tanh(x), ops.exp(-ops.abs(x)) + ops.sqrt(ops.abs(y)),
             ops.square(x) + ops.power(ops.abs(y) + 1.0, 1.5) + ops.log(ops.abs(x) + 1.0), ops.clip(mixed, -0.5, 0.5),
             ops.relu(x) / (ops.abs(y) + 1.0)]
        cat = ops.concatenate(e, axis=-1)
        outs = [L.Dense(3, name="head")(ops.reshape(cat, (-1, 4 * 40))),
                ops.mean(cat, axis=-1, keepdims=True), ops.sum(cat, axis=1), ops.max(cat, axis=(1, 2))]
        return K.Model([x, y], outs, name="keras_ops")
    if K is keras:
        out["keras_ops"] = (keras_ops, [(4, 5), (4, 5)], "float")
    # Random augmentation layers: the identity at inference (training=False).
    seq("augment_identity", (12, 12, 3), lambda: [L.RandomFlip(), L.RandomRotation(0.1), L.RandomZoom(0.1), L.RandomContrast(0.2),
                                                   L.RandomTranslation(0.1, 0.1), L.RandomBrightness(0.1), L.Conv2D(4, 3),
                                                   L.GlobalAveragePooling2D()])
    seq("group_unit_norm", (8, 8, 6), lambda: [L.Conv2D(8, 3, name="conv"), L.GroupNormalization(groups=4, name="gn"),
                                                L.Conv1D(6, 1) if False else L.Reshape((36, 8)), L.GroupNormalization(groups=2, epsilon=0.01, center=False),
                                                L.UnitNormalization(axis=[1, 2]), L.Dense(4), L.UnitNormalization()])
    if K is keras:
        seq("rms_normalization", (5, 6), lambda: [L.Dense(8), L.RMSNormalization(), L.Dense(3), L.RMSNormalization(axis=[1, 2], epsilon=0.1)])

    def dot_layers(xs):
        a, b = xs
        m = L.Dot(axes=2, name="scores")([a, b])                      # [B, 4, 5]
        t = L.Dot(axes=1, name="cols")([L.Dense(6)(a), a])           # [B, 6, 6]
        u = L.Dot(axes=1, normalize=True, name="cosine")([L.Flatten()(a)[:, :8] if False else L.Dense(7)(L.Flatten()(a)),
                                                          L.Dense(7)(L.Flatten()(b))])
        return [m, t, u]
    fn("dot_layers", [(4, 6), (5, 6)], dot_layers)
    seq("conv1d_variants", (12, 3), lambda: [L.DepthwiseConv1D(3, depth_multiplier=2, name="dw"),
                                             L.SeparableConv1D(4, 3, padding="same", depth_multiplier=2, activation="relu", name="sep"),
                                             L.Conv1DTranspose(3, 3, strides=2, name="convt"),
                                             L.Conv1DTranspose(2, 2, strides=2, padding="same", use_bias=False), L.Flatten()])
    seq("conv3d_variants", (4, 5, 4, 2), lambda: [L.ZeroPadding3D(((1, 0), (0, 1), (1, 1))), L.Conv3DTranspose(3, 3, strides=2, padding="same"),
                                                  L.Cropping3D(((1, 1), (0, 2), (1, 0))), L.UpSampling3D((1, 2, 1)),
                                                  L.Conv3DTranspose(2, 2, strides=(1, 2, 1)), L.GlobalAveragePooling3D()])
    seq("conv_transpose_output_padding", (5, 6, 2), lambda: [
        L.Conv2DTranspose(3, 3, strides=2, padding="same", output_padding=1),
        L.Conv2DTranspose(2, (3, 2), strides=(3, 2), output_padding=(2, 0)), L.Flatten()])

    def transformer_encoder(x):
        h = L.MultiHeadAttention(num_heads=2, key_dim=8, name="mha")(x, x)
        x = L.LayerNormalization(epsilon=1e-6)(L.Add()([x, h]))
        f = L.Dense(16)(L.Dense(32, activation="relu")(x))
        x = L.LayerNormalization(epsilon=1e-6)(L.Add()([x, f]))
        return L.Dense(3)(L.GlobalAveragePooling1D()(x))
    fn("transformer_encoder", [(6, 16)], transformer_encoder)

    def cross_attention(xs):
        q, v = xs
        a = L.MultiHeadAttention(num_heads=3, key_dim=4, value_dim=5, output_shape=7, name="cross")(q, v)
        b = L.MultiHeadAttention(num_heads=1, key_dim=6, use_bias=False, name="self_nobias")(a, a, a)
        return [a, b]
    fn("cross_attention", [(5, 8), (7, 6)], cross_attention)
    def recurrent_state(x):
        seqs, h, c = L.LSTM(4, return_sequences=True, return_state=True, name="lstm_s")(x)
        g, gh = L.GRU(3, return_state=True, go_backwards=True, name="gru_s")(seqs)
        r, rh = L.SimpleRNN(2, return_state=True, name="rnn_s")(x)
        return [seqs, h, c, L.Subtract()([g, gh]), L.Concatenate()([gh, rh, r])]
    fn("recurrent_state", [(5, 3)], recurrent_state)

    def normalization_options(x):
        a = L.LayerNormalization(axis=1, name="ln_time")(x)                   # over a non-trailing axis
        b = L.LayerNormalization(axis=[1, 2], center=False, name="ln_both")(x)
        c = L.Normalization(axis=-1, mean=[0.5, -1.0, 2.0, 0.25], variance=[2.0, 0.5, 1.0, 4.0], invert=True, name="denorm")(x)
        return [a, b, c]
    fn("normalization_options", [(6, 4)], normalization_options)
    def time_distributed(xs):
        a = L.TimeDistributed(L.Dense(5, activation="tanh"), name="td_dense")(xs[0])
        b = L.TimeDistributed(L.Conv2D(4, 3, activation="relu"), name="td_conv")(xs[1])
        if K is keras:  # Keras 2 files record no shapes past the model inputs
            b = L.TimeDistributed(L.MaxPooling2D(), name="td_pool")(b)
            b = L.TimeDistributed(L.Flatten(), name="td_flat")(b)
            b = L.LSTM(3)(b)
        return [a, b]
    fn("time_distributed", [(4, 6), (3, 8, 8, 2)], time_distributed)
    def image_preprocessing(x):
        conv = L.Conv2D(4, 3, padding="same", name="conv")(x)
        a = L.Resizing(20, 26, name="up_bilinear")(conv)
        b = L.Resizing(7, 9, interpolation="nearest", name="down_nearest")(x)
        c = L.Resizing(29, 40, interpolation="nearest", name="up_nearest")(x)
        d = L.Resizing(6, 5, name="down_bilinear")(conv)
        e = L.CenterCrop(9, 11, name="center_crop")(conv)
        outs = [L.GlobalAveragePooling2D()(L.Conv2D(3, 3)(a)), b, c, d, e]
        if K is keras:  # tf-keras' Resizing has no pad_to_aspect_ratio
            outs += [L.Resizing(10, 10, crop_to_aspect_ratio=True, name="crop_aspect")(x),
                     L.Resizing(8, 16, pad_to_aspect_ratio=True, fill_value=0.5, name="pad_aspect")(x)]
        return outs
    fn("image_preprocessing", [(13, 17, 3)], image_preprocessing)

    def attention_layers(xs):
        q, v = xs
        a = L.Attention(name="luong")([q, v])
        b = L.Attention(use_scale=True, score_mode="concat", name="concat")([q, v, L.Dense(6, name="key_proj")(v)])
        c = L.AdditiveAttention(name="bahdanau")([q, v])
        d = L.Attention(use_scale=True, name="causal")([q, q], use_causal_mask=True)
        e, s = L.AdditiveAttention(use_scale=False, name="with_scores")([v, q], return_attention_scores=True)
        return [a, b, c, d, e, s]
    fn("attention_layers", [(5, 6), (7, 6)], attention_layers)
    if K is tf_keras:
        # TensorFlow functions called on Keras tensors: tf-keras records them as TFOpLambda and
        # SlicingOpLambda layers (Keras 2 .h5 only).
        import tensorflow as tf

        def tf_op_layers(x):
            h = L.Dense(6, name="dense")(x)
            a = tf.math.exp(-tf.abs(h + 1.0)) * 2.0 - tf.nn.relu(x) / 3.0
            b = tf.reshape(tf.nn.sigmoid(x) - tf.nn.relu6(h), (-1, 24))
            c = tf.concat([tf.reduce_mean(x, axis=-1, keepdims=True), tf.math.sqrt(tf.abs(x)), tf.math.rsqrt(tf.abs(h) + 1.0)], axis=-1)
            d = tf.matmul(x, tf.transpose(h, [0, 2, 1])) + tf.linalg.matmul(h, x, transpose_b=True)
            e = tf.expand_dims(tf.reduce_sum(x, axis=1), 1) + x[:, 1:3, :] - h[:, ::2, ::-1][:, 0:2]
            f = tf.clip_by_value(h, -0.5, 0.5) + tf.math.maximum(x, 0.1) + tf.math.square(x) + tf.nn.softmax(h, axis=1) + tf.math.tanh(x)
            g = tf.cast(x > 0.0, tf.float32) * x + tf.where(h > 0, x, 0.1 * x) + tf.nn.leaky_relu(x) + tf.nn.elu(h) + tf.nn.gelu(x) + tf.nn.silu(h)
            s = tf.stack([tf.squeeze(tf.expand_dims(x, 2), axis=2), h * 2.0], axis=1)
            p = tf.pad(x, [[0, 0], [1, 0], [0, 2]], constant_values=0.25) + tf.math.log(tf.abs(tf.pad(h, [[0, 0], [1, 0], [0, 2]])) + 1.0)
            return [a, b, c, d, e, f, g, s, p, x[:, -1, 2:5]]
        fn("tf_op_layers", [(4, 6)], tf_op_layers)
    # Masks: padded steps (all-zero features, token 0) at the start, the end and the middle of
    # the three rows (see padded_inputs).
    def masked_sequences(x):
        m = L.Masking(mask_value=0.0, name="masking")(x)
        a = L.LSTM(5, return_sequences=True, name="lstm_seq")(m)
        a = L.Dense(4, activation="tanh", name="dense_keeps_mask")(a)
        b = L.Bidirectional(L.GRU(3, return_sequences=True), name="bigru")(a)
        c = L.Bidirectional(L.LSTM(2), merge_mode="sum", name="bilstm")(b)
        d, dh = L.GRU(3, go_backwards=True, return_state=True, name="gru_back")(m)
        e = L.SimpleRNN(2, return_sequences=True, zero_output_for_mask=True, name="rnn_zero")(m)
        f = L.GlobalAveragePooling1D(name="masked_mean")(L.Add(name="add_masks")([a, L.Dense(4, name="dense2")(m)]))
        return [a, b, c, d, dh, e, f]
    fn("masked_sequences", [(6, 4)], masked_sequences, kind="padded")

    def embedding_mask_zero(x):
        emb = L.Embedding(20, 5, mask_zero=True, name="embedding")(x)
        a = L.LSTM(4, name="lstm")(emb)
        b = L.GRU(3, return_sequences=True, name="gru")(emb)
        return [a, b, L.GlobalAveragePooling1D(name="mean")(b)]
    fn("embedding_mask_zero", [(7,)], embedding_mask_zero, kind="tokens")
    def conv_lstm(xs):
        a, b = xs
        s = L.ConvLSTM2D(3, 3, padding="same", return_sequences=True, name="convlstm2d_seq")(a)
        f = L.ConvLSTM2D(2, (2, 3), strides=(1, 2), go_backwards=True, name="convlstm2d_back")(s)
        o, h, c = L.ConvLSTM1D(4, 3, return_state=True, recurrent_activation="hard_sigmoid", name="convlstm1d")(b)
        return [s, f, o, c]
    fn("conv_lstm", [(4, 6, 6, 2), (5, 8, 3)], conv_lstm)
    # Layout regions that fold-transposes flips whole: a ConvNeXt block (LayerNormalization
    # over channels and Dense layers between convolutions) and a NASNet-style cell (Adds of
    # convolution branches feeding a Concatenate that also reads one branch directly).
    def layout_regions(x):
        h = L.Conv2D(8, 2, strides=2, name="stem")(x)
        h = L.LayerNormalization(epsilon=1e-6, name="stem_ln")(h)
        y = L.DepthwiseConv2D(3, padding="same", name="dw")(h)
        y = L.LayerNormalization(epsilon=1e-6, name="block_ln")(y)
        y = L.Dense(16, activation="gelu", name="expand")(y)
        y = L.Dense(8, name="project")(y)
        h = L.Add(name="residual")([h, y])
        a = L.Conv2D(8, 1, name="branch_a")(h)
        b = L.Conv2D(8, 3, padding="same", name="branch_b")(L.ReLU()(h))
        p = L.AveragePooling2D(3, strides=1, padding="same", name="branch_pool")(h)
        cell = L.Concatenate(name="cell")([L.Add(name="sum_ab")([a, b]), L.Add(name="sum_pool")([p, a]), b])
        z = L.Conv2D(6, 1, name="after_cell")(L.ReLU(name="cell_relu")(cell))
        return [L.GlobalAveragePooling2D()(z), cell]
    fn("layout_regions", [(12, 12, 3)], layout_regions)
    # MultiHeadAttention with masks: the padding mask Embedding(mask_zero) puts on the tokens
    # (query and value masks, read from the tensors) and a causal mask.
    def mha_masks(x):
        e = L.Embedding(20, 8, mask_zero=True, name="embedding")(x)
        h = L.MultiHeadAttention(num_heads=2, key_dim=4, name="mha_padding")(e, e)
        c = L.MultiHeadAttention(num_heads=2, key_dim=4, name="mha_causal")(h, h, use_causal_mask=True)
        return [h, L.Dense(3, name="head")(c)]
    fn("mha_masks", [(7,)], mha_masks, kind="tokens")
    seq("normalization_layer", (5,), lambda: [L.Normalization(mean=[0.5, -1.0, 2.0, 0.0, 1.5], variance=[2.0, 0.5, 1.0, 4.0, 0.25]), L.Dense(3)]) if K is keras else None
    return out


def randomize(model, rng):
    ws = []
    for w in model.weights:
        v = w.numpy()
        n = w.name.split("/")[-1].split(":")[0]
        if "moving_variance" in n or n == "variance":
            v = rng.uniform(0.5, 2.5, v.shape)
        elif "moving_mean" in n or n == "mean":
            v = rng.normal(0.7, 0.5, v.shape)
        elif n == "count" or v.dtype.kind in "iu":
            ws.append(v)
            continue
        elif n == "gamma":
            v = rng.uniform(0.6, 1.6, v.shape)
        elif len(v.shape) <= 1:
            v = rng.normal(0.0, 0.3, v.shape)
        else:
            fan_in = int(np.prod(v.shape[:-1])) if len(v.shape) > 1 else v.shape[0]
            v = rng.normal(0.0, 1.3 / np.sqrt(max(fan_in, 1)), v.shape)
        ws.append(v.astype(w.numpy().dtype))
    model.set_weights(ws)


def save_raw(path, a):
    np.ascontiguousarray(a).astype(np.float32 if a.dtype.kind == "f" else a.dtype).tofile(path)


def padded_inputs(rng, shapes, kind):
    """The fixture's input batch. "padded" and "tokens" rows are padded (zeros) at the start,
    the end and the middle, for Masking and Embedding(mask_zero=True)."""
    if kind in ("int", "tokens"):
        xs = [rng.integers(1 if kind == "tokens" else 0, 20, (BATCH,) + s).astype(np.int32) for s in shapes]
    else:
        xs = [rng.normal(0, 1, (BATCH,) + s).astype(np.float32) for s in shapes]
    if kind in ("padded", "tokens"):
        for x in xs:
            x[0, :2] = 0
            x[1, -3:] = 0
            x[2, 2] = 0
    return xs


def make_keras2_only(name, spec):
    """A model only tf-keras can express (TensorFlow functions as layers): .h5 and its outputs."""
    build, shapes, kind = spec
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    m2 = build()
    randomize(m2, rng)
    xs = [rng.normal(0, 1, (BATCH,) + s).astype(np.float32) for s in shapes]
    y2 = m2(xs if len(xs) > 1 else xs[0], training=False)
    y2 = [np.asarray(t) for t in (y2 if isinstance(y2, (list, tuple)) else [y2])]
    m2.save(os.path.join(d, "model_k2.h5"))
    for i, x in enumerate(xs):
        save_raw(os.path.join(d, f"input{i}.bin"), x)
    for i, y in enumerate(y2):
        save_raw(os.path.join(d, f"keras2_output{i}.bin"), y)
    meta = {"inputs": [{"shape": list(x.shape), "dtype": str(x.dtype)} for x in xs],
            "outputs": [list(y.shape) for y in y2], "outputs_keras2": [list(y.shape) for y in y2],
            "formats": ["model_k2.h5"], "keras2": tf_keras.__version__}
    with open(os.path.join(d, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    print(f"{name}: model_k2.h5")


def main():
    k3 = models(keras)
    k2 = models(tf_keras)
    index = []
    for name in list(k3) + [n for n in k2 if n not in k3 and k2[n] is not None]:
        if ONLY and name != ONLY:
            continue
        if name not in k3:
            make_keras2_only(name, k2[name])
            index.append(name)
            continue
        build, shapes, kind = k3[name]
        rng = np.random.default_rng(zlib.crc32(name.encode()))
        d = os.path.join(OUT, name)
        os.makedirs(d, exist_ok=True)
        m3 = build()
        randomize(m3, rng)
        xs = padded_inputs(rng, shapes, kind)
        y3 = m3(xs if len(xs) > 1 else xs[0], training=False)
        y3 = [np.asarray(t) for t in (y3 if isinstance(y3, (list, tuple)) else [y3])]
        m3.save(os.path.join(d, "model.keras"))
        formats = ["model.keras"]
        try:
            m3.save(os.path.join(d, "model_k3.h5"))
            formats.append("model_k3.h5")
        except TypeError as e:  # Keras 3's legacy .h5 writer cannot copy some layers' configs
            print(f"{name}: Keras 3 cannot write .h5 ({e})")
            if os.path.exists(os.path.join(d, "model_k3.h5")):
                os.remove(os.path.join(d, "model_k3.h5"))
        meta = {"inputs": [{"shape": list(x.shape), "dtype": str(x.dtype)} for x in xs],
                "outputs": [list(y.shape) for y in y3], "formats": formats}
        for i, x in enumerate(xs):
            save_raw(os.path.join(d, f"input{i}.bin"), x)
        for i, y in enumerate(y3):
            save_raw(os.path.join(d, f"keras3_output{i}.bin"), y)
        if name in k2 and k2[name] is not None and keras.backend.backend() == "tensorflow":
            m2 = k2[name][0]()
            try:
                m2.set_weights(m3.get_weights())
            except ValueError:  # different layer sets (activations only Keras 3 has): copy by layer name
                for layer in m2.layers:
                    if layer.weights:
                        layer.set_weights(m3.get_layer(layer.name).get_weights())
            y2 = m2(xs if len(xs) > 1 else xs[0], training=False)
            y2 = [np.asarray(t) for t in (y2 if isinstance(y2, (list, tuple)) else [y2])]
            m2.save(os.path.join(d, "model_k2.h5"))
            for i, y in enumerate(y2):
                save_raw(os.path.join(d, f"keras2_output{i}.bin"), y)
            meta["outputs_keras2"] = [list(y.shape) for y in y2]
            meta["formats"].append("model_k2.h5")
        meta["keras3"] = keras.__version__
        meta["keras2"] = tf_keras.__version__
        with open(os.path.join(d, "meta.json"), "w") as f:
            json.dump(meta, f, indent=1)
        index.append(name)
        print(f"{name}: {', '.join(meta['formats'])}")
    print(f"{len(index)} fixtures in {OUT}")


main()

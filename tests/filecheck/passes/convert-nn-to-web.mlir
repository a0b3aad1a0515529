// RUN: nnjit-opt %s --split-input-file -p convert-nn-to-web | filecheck %s

// Fusion: epilogues join their anchor, prologues are inlined into their consumer, views stay index
// arithmetic, multi-use values are materialised, a lone reshape stays a free alias in @main.

func.func @matmul_bias_gelu_residual(%x: tensor<8x32xf32>, %w: tensor<32x32xf32>, %b: tensor<32xf32>) -> tensor<8x32xf32> {
  %m = nn.matmul %x, %w : (tensor<8x32xf32>, tensor<32x32xf32>) -> tensor<8x32xf32>
  %a = nn.add %m, %b : (tensor<8x32xf32>, tensor<32xf32>) -> tensor<8x32xf32>
  %g = nn.gelu %a {approximate = "none"} : tensor<8x32xf32>
  %r = nn.add %g, %x : (tensor<8x32xf32>, tensor<8x32xf32>) -> tensor<8x32xf32>
  func.return %r : tensor<8x32xf32>
}
// CHECK:       web.kernel @matmul_0(%0: tensor<8x32xf32>, %1: tensor<32x32xf32>, %2: tensor<32xf32>) -> tensor<8x32xf32> attributes {template = "matmul", schedule = #web.schedule<workgroup = [16, 16, 1], tile = [64, 64, 8], thread = [4, 4], vector = 4, unroll = 8, shared = true>} {
// CHECK-NEXT:    %m = nn.matmul %0, %1
// CHECK-NEXT:    %a = nn.add %m, %2
// CHECK-NEXT:    %g = nn.gelu %a
// CHECK-NEXT:    %r = nn.add %g, %0
// CHECK-NEXT:    web.yield %r : tensor<8x32xf32>
// CHECK-NEXT:  }
// CHECK-LABEL: func.func @matmul_bias_gelu_residual(
// CHECK-NEXT:    %r = web.dispatch @matmul_0(%x, %w, %b) : (tensor<8x32xf32>, tensor<32x32xf32>, tensor<32xf32>) -> tensor<8x32xf32>
// CHECK-NEXT:    func.return %r : tensor<8x32xf32>

// -----

// Attention: the head split (reshape + transpose) is a view inlined into both matmuls' reads; the
// scale is a splat constant cloned into the kernel; softmax is its own row-reduction kernel.
func.func @attention(%q: tensor<8x32xf32>, %k: tensor<4x8x8xf32>) -> tensor<4x8x8xf32> {
  %r = nn.reshape %q : tensor<8x32xf32> -> tensor<8x4x8xf32>
  %t = nn.transpose %r {perm = array<i64: 1, 0, 2>} : (tensor<8x4x8xf32>) -> tensor<4x8x8xf32>
  %s = nn.matmul %t, %k : (tensor<4x8x8xf32>, tensor<4x8x8xf32>) -> tensor<4x8x8xf32>
  %c = nn.constant dense<0.125> : tensor<f32>
  %scaled = nn.mul %s, %c : (tensor<4x8x8xf32>, tensor<f32>) -> tensor<4x8x8xf32>
  %p = nn.softmax %scaled {axis = -1 : i64} : tensor<4x8x8xf32>
  func.return %p : tensor<4x8x8xf32>
}
// CHECK:       web.kernel @matmul_0(%0: tensor<8x32xf32>, %1: tensor<4x8x8xf32>) -> tensor<4x8x8xf32> attributes {template = "matmul"
// CHECK-NEXT:    %c = nn.constant dense<1.250000e-01> : tensor<f32>
// CHECK-NEXT:    %r = nn.reshape %0 : tensor<8x32xf32> -> tensor<8x4x8xf32>
// CHECK-NEXT:    %t = nn.transpose %r
// CHECK-NEXT:    %s = nn.matmul %t, %1
// CHECK-NEXT:    %scaled = nn.mul %s, %c
// CHECK-NEXT:    web.yield %scaled
// CHECK:       web.kernel @softmax_0(%0: tensor<4x8x8xf32>) -> tensor<4x8x8xf32> attributes {template = "row_reduce"
// CHECK-NEXT:    %p = nn.softmax %0
// CHECK-NEXT:    web.yield %p
// CHECK-LABEL: func.func @attention(
// CHECK-NEXT:    %scaled = web.dispatch @matmul_0(%q, %k)
// CHECK-NEXT:    %p = web.dispatch @softmax_0(%scaled)
// CHECK-NEXT:    func.return %p

// -----

// A value with two users is materialised once; an expensive prologue is not pushed into matmul reads.
func.func @shared_value(%x: tensor<4x4xf32>, %w: tensor<4x4xf32>) -> (tensor<4x4xf32>, tensor<4x4xf32>) {
  %e = nn.exp %x : tensor<4x4xf32>
  %m = nn.matmul %e, %w : (tensor<4x4xf32>, tensor<4x4xf32>) -> tensor<4x4xf32>
  %n = nn.neg %e : tensor<4x4xf32>
  func.return %m, %n : tensor<4x4xf32>, tensor<4x4xf32>
}
// CHECK:       web.kernel @fused_0(%0: tensor<4x4xf32>) -> tensor<4x4xf32> attributes {template = "elementwise"
// CHECK-NEXT:    %e = nn.exp %0
// CHECK-NEXT:    web.yield %e
// CHECK:       web.kernel @matmul_0(
// CHECK-NEXT:    %m = nn.matmul
// CHECK-NEXT:    web.yield %m
// CHECK:       web.kernel @fused_1(
// CHECK-NEXT:    %n = nn.neg
// CHECK-LABEL: func.func @shared_value(
// CHECK-NEXT:    %e = web.dispatch @fused_0(%x)
// CHECK-NEXT:    %m = web.dispatch @matmul_0(%e, %w)
// CHECK-NEXT:    %n = web.dispatch @fused_1(%e)

// -----

// An embedding gather, a broadcast add and a cast fuse into one elementwise kernel; reductions over
// trailing axes are row reductions, others are general reductions; a lone reshape is an alias.
func.func @elementwise_and_reductions(%ids: tensor<1x8xi64>, %table: tensor<50x16xf32>, %pos: tensor<8x16xf32>) -> (tensor<1x8x1xf32>, tensor<8x16xf32>, tensor<128xf32>) {
  %g = nn.gather %table, %ids {axis = 0 : i64} : (tensor<50x16xf32>, tensor<1x8xi64>) -> tensor<1x8x16xf32>
  %a = nn.add %g, %pos : (tensor<1x8x16xf32>, tensor<8x16xf32>) -> tensor<1x8x16xf32>
  %rows = nn.reduce_mean %a {axes = array<i64: 2>} : (tensor<1x8x16xf32>) -> tensor<1x8x1xf32>
  %cols = nn.reduce_sum %a {axes = array<i64: 0>} : (tensor<1x8x16xf32>) -> tensor<8x16xf32>
  %flat = nn.reshape %pos : tensor<8x16xf32> -> tensor<128xf32>
  func.return %rows, %cols, %flat : tensor<1x8x1xf32>, tensor<8x16xf32>, tensor<128xf32>
}
// CHECK:       web.kernel @fused_0(%0: tensor<50x16xf32>, %1: tensor<1x8xi64>, %2: tensor<8x16xf32>) -> tensor<1x8x16xf32> attributes {template = "elementwise"
// CHECK-NEXT:    %g = nn.gather %0, %1
// CHECK-NEXT:    %a = nn.add %g, %2
// CHECK:       web.kernel @reduce_mean_0({{.*}} attributes {template = "row_reduce"
// CHECK:       web.kernel @reduce_sum_0({{.*}} attributes {template = "reduce"
// CHECK-LABEL: func.func @elementwise_and_reductions(
// CHECK-NEXT:    %a = web.dispatch @fused_0(%table, %ids, %pos)
// CHECK-NEXT:    %rows = web.dispatch @reduce_mean_0(%a)
// CHECK-NEXT:    %cols = web.dispatch @reduce_sum_0(%a)
// CHECK-NEXT:    %flat = nn.reshape %pos : tensor<8x16xf32> -> tensor<128xf32>

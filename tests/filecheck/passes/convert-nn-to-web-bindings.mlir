// RUN: nnjit-opt %s --split-input-file -p "convert-nn-to-web{max-bindings=4 max-binding-bytes=64}" | filecheck %s
// RUN: nnjit-opt %s --split-input-file -p "convert-nn-to-web{max-bindings=4 max-binding-bytes=64}" | filecheck %s --check-prefix=ONE
// RUN: nnjit-opt %s --split-input-file -p "convert-nn-to-web{max-bindings=4}" | filecheck %s --check-prefix=FUSED
// RUN: nnjit-opt %s --split-input-file -p "convert-nn-to-web{target=wasm max-bindings=4}" | filecheck %s --check-prefix=WASM

// On WebGPU a fusion group stops growing at `max-bindings` storage bindings (the output included);
// Wasm has no bindings, so the same chains fuse whole there.

// Three inputs and an output fill four bindings: the fourth input starts a kernel of its own.
func.func @sum_of_four(%x: tensor<4x8xf32>, %a: tensor<4x8xf32>, %b: tensor<4x8xf32>, %c: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %s0 = nn.add %x, %a : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  %s1 = nn.add %s0, %b : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  %s2 = nn.add %s1, %c : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  func.return %s2 : tensor<4x8xf32>
}
// CHECK:       web.kernel @fused_0(%0: tensor<4x8xf32>, %1: tensor<4x8xf32>, %2: tensor<4x8xf32>) -> tensor<4x8xf32>
// CHECK:       web.kernel @fused_1(%0: tensor<4x8xf32>, %1: tensor<4x8xf32>) -> tensor<4x8xf32>
// CHECK-LABEL: func.func @sum_of_four(
// CHECK-NEXT:    %s1 = web.dispatch @fused_0(%x, %a, %b)
// CHECK-NEXT:    %s2 = web.dispatch @fused_1(%s1, %c)
// WASM:        web.kernel @fused_0(%0: tensor<4x8xf32>, %1: tensor<4x8xf32>, %2: tensor<4x8xf32>, %3: tensor<4x8xf32>) -> tensor<4x8xf32>
// WASM-NOT:    @fused_1

// -----

// A 128-byte weight counts as the two 64-byte pieces web-split-bindings will cut it into: its gather
// (two pieces, the ids, the output) is a kernel, and the add that would make it five is another.
func.func @embedding_plus_position(%ids: tensor<1x2xi64>, %p: tensor<1x2x8xf32>) -> tensor<1x2x8xf32> {
  %w = nn.constant dense<[[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0], [1.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0], [2.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0], [3.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]]> : tensor<4x8xf32>
  %e = nn.gather %w, %ids {axis = 0 : i64} : (tensor<4x8xf32>, tensor<1x2xi64>) -> tensor<1x2x8xf32>
  %y = nn.add %e, %p : (tensor<1x2x8xf32>, tensor<1x2x8xf32>) -> tensor<1x2x8xf32>
  func.return %y : tensor<1x2x8xf32>
}
// Under the default 128 MiB binding the weight is one binding, and all four fit one kernel.
// FUSED-LABEL: func.func @sum_of_four(
// FUSED:       web.kernel @fused_0(%0: tensor<4x8xf32>, %1: tensor<1x2xi64>, %2: tensor<1x2x8xf32>) -> tensor<1x2x8xf32>
// FUSED-NOT:   web.kernel
// ONE:         web.kernel @fused_0(%0: tensor<4x8xf32>, %1: tensor<1x2xi64>) -> tensor<1x2x8xf32>
// ONE-NEXT:      nn.gather
// ONE-NEXT:      web.yield
// ONE:         web.kernel @fused_1(%0: tensor<1x2x8xf32>, %1: tensor<1x2x8xf32>) -> tensor<1x2x8xf32>
// ONE-NEXT:      nn.add

// RUN: nnjit-opt %s -p "web-split-bindings{max-bytes=1024}" | filecheck %s
// RUN: nnjit-opt %s -p "web-split-bindings{max-bytes=1024}" -t nnjit-wgsl | filecheck %s --check-prefix=WGSL
// RUN: not nnjit-opt %s -p "web-split-bindings{max-bytes=64 max-bindings=8}" 2>&1 | filecheck %s --check-prefix=TOO-MANY

// A 2 KiB weight with 512-byte rows goes to its kernel as two 1 KiB leading-axis slices joined by
// an nn.concat view; a weight whose single row is over the limit is cut flat and reshaped back;
// the small bias and the input stay whole.

builtin.module {
  web.kernel @matmul_0(%a: tensor<4x4xf32>, %w: tensor<4x128xf32>, %bias: tensor<128xf32>) -> tensor<4x128xf32> attributes {template = "matmul", schedule = #web.schedule<workgroup = [8, 8, 1], tile = [32, 32, 8], thread = [4, 4], vector = 1, unroll = 1, shared = true>} {
    %m = nn.matmul %a, %w : (tensor<4x4xf32>, tensor<4x128xf32>) -> tensor<4x128xf32>
    %y = nn.add %m, %bias : (tensor<4x128xf32>, tensor<128xf32>) -> tensor<4x128xf32>
    web.yield %y : tensor<4x128xf32>
  }
  web.kernel @neg_0(%v: tensor<1x512xf32>) -> tensor<1x512xf32> attributes {template = "elementwise", schedule = #web.schedule<workgroup = [64, 1, 1], tile = [0, 0, 0], thread = [1, 1], vector = 1, unroll = 1, shared = false>} {
    %n = nn.neg %v : tensor<1x512xf32>
    web.yield %n : tensor<1x512xf32>
  }
  func.func @main(%x: tensor<4x4xf32>) -> (tensor<4x128xf32>, tensor<1x512xf32>) {
    %w = nn.constant dense<0.5> : tensor<4x128xf32>
    %bias = nn.constant dense<1.0> : tensor<128xf32>
    %row = nn.constant dense<2.0> : tensor<1x512xf32>
    %y = web.dispatch @matmul_0(%x, %w, %bias) : (tensor<4x4xf32>, tensor<4x128xf32>, tensor<128xf32>) -> tensor<4x128xf32>
    %r = web.dispatch @neg_0(%row) : (tensor<1x512xf32>) -> tensor<1x512xf32>
    func.return %y, %r : tensor<4x128xf32>, tensor<1x512xf32>
  }
}

// CHECK: builtin.module attributes {web.split_bindings = {max_bytes = 1024 : i64, weights = array<i64: 2048, 2048>, pieces = array<i64: 2, 2>}}
// CHECK-LABEL: web.kernel @matmul_0(
// CHECK-SAME:    %{{.*}}: tensor<4x4xf32>, %[[W0:.*]]: tensor<2x128xf32>, %[[W1:.*]]: tensor<2x128xf32>, %{{.*}}: tensor<128xf32>) -> tensor<4x128xf32>
// CHECK-NEXT:    %[[J:.*]] = nn.concat %[[W0]], %[[W1]] {axis = 0 : i64} : (tensor<2x128xf32>, tensor<2x128xf32>) -> tensor<4x128xf32>
// CHECK-NEXT:    nn.matmul %{{.*}}, %[[J]]
// CHECK-LABEL: web.kernel @neg_0(
// CHECK-SAME:    %[[R0:.*]]: tensor<256xf32>, %[[R1:.*]]: tensor<256xf32>) -> tensor<1x512xf32>
// CHECK-NEXT:    %[[RJ:.*]] = nn.concat %[[R0]], %[[R1]] {axis = 0 : i64} : (tensor<256xf32>, tensor<256xf32>) -> tensor<512xf32>
// CHECK-NEXT:    %[[RR:.*]] = nn.reshape %[[RJ]] : tensor<512xf32> -> tensor<1x512xf32>
// CHECK-NEXT:    nn.neg %[[RR]]
// CHECK-LABEL: func.func @main(
// CHECK:         %[[S0:.*]] = nn.slice %w {starts = array<i64: 0, 0>, ends = array<i64: 2, 128>, steps = array<i64: 1, 1>} : (tensor<4x128xf32>) -> tensor<2x128xf32>
// CHECK-NEXT:    %[[S1:.*]] = nn.slice %w {starts = array<i64: 2, 0>, ends = array<i64: 4, 128>, steps = array<i64: 1, 1>} : (tensor<4x128xf32>) -> tensor<2x128xf32>
// CHECK-NEXT:    %y = web.dispatch @matmul_0(%x, %[[S0]], %[[S1]], %bias)
// CHECK-NEXT:    %[[FLAT:.*]] = nn.reshape %row : tensor<1x512xf32> -> tensor<512xf32>
// CHECK-NEXT:    nn.slice %[[FLAT]] {starts = array<i64: 0>, ends = array<i64: 256>
// CHECK-NEXT:    nn.slice %[[FLAT]] {starts = array<i64: 256>, ends = array<i64: 512>
// CHECK-NEXT:    %r = web.dispatch @neg_0(

// Each piece is its own read-only binding; the concat view selects between them.
// WGSL-LABEL: // kernel @matmul_0
// WGSL:        @group(0) @binding(1) var<storage, read> b1: array<f32>;
// WGSL-NEXT:   @group(0) @binding(2) var<storage, read> b2: array<f32>;
// WGSL:        let [[HI:v[0-9]+]] = b2[
// WGSL:        let [[LO:v[0-9]+]] = b1[
// WGSL:        let [[IN_LO:v[0-9]+]] = ({{.*}} < 2i);
// WGSL-NEXT:   select([[HI]], [[LO]], [[IN_LO]]);

// TOO-MANY-NOT: Traceback
// TOO-MANY: nnjit-opt: error: web.kernel @matmul_0: splitting its weights over 64 bytes a binding needs 42 storage bindings, more than the 8 a shader stage may have

// RUN: nnjit-opt %s -t nnjit-wgsl | filecheck %s

// One compute shader per web.kernel: bindings in block-argument order with the output last,
// sizes from the schedule, values as `let`s of the kernel body's expression trees.

// An elementwise kernel: a transposed read and a broadcast bias, two outputs per thread.
web.kernel @fused_0(%a: tensor<4x8xf32>, %b: tensor<4xf32>) -> tensor<8x4xf32> attributes {template = "elementwise", schedule = #web.schedule<workgroup = [64, 1, 1], tile = [0, 0, 0], thread = [1, 1], vector = 1, unroll = 2, shared = false>} {
  %t = nn.transpose %a {perm = array<i64: 1, 0>} : (tensor<4x8xf32>) -> tensor<8x4xf32>
  %s = nn.add %t, %b : (tensor<8x4xf32>, tensor<4xf32>) -> tensor<8x4xf32>
  web.yield %s : tensor<8x4xf32>
}
// CHECK-LABEL: // kernel @fused_0 grid [1, 1, 1]
// CHECK-NEXT:  @group(0) @binding(0) var<storage, read> b0: array<f32>;
// CHECK-NEXT:  @group(0) @binding(1) var<storage, read> b1: array<f32>;
// CHECK-NEXT:  @group(0) @binding(2) var<storage, read_write> b2: array<f32>;
// CHECK:       @compute @workgroup_size(64, 1, 1)
// CHECK:         let t1 = i32((wid.x + wid.y * 1u) * 64u + lidx);
// CHECK-NEXT:    if (t1 * 2i + 0i < 32i) {
// CHECK-NEXT:      let i2 = t1 * 2i + 0i;
// CHECK-NEXT:      let v3 = (i2 % 4i);
// CHECK-NEXT:      let v4 = (v3 * 8i);
// CHECK-NEXT:      let v5 = (i2 / 4i);
// CHECK-NEXT:      let v6 = (v4 + v5);
// CHECK-NEXT:      let v7 = b0[v6];
// CHECK-NEXT:      let v8 = b1[v3];
// CHECK-NEXT:      let v9 = (v7 + v8);
// CHECK-NEXT:      b2[i2] = v9;
// CHECK-NEXT:    }
// CHECK-NEXT:    if (t1 * 2i + 1i < 32i) {

// A matmul with vec4 accumulators and staged tiles, its bias-and-relu epilogue at the store.
web.kernel @matmul_0(%x: tensor<5x12xf32>, %w: tensor<12x9xf32>, %c: tensor<9xf32>) -> tensor<5x9xf32> attributes {template = "matmul", schedule = #web.schedule<workgroup = [2, 4, 1], tile = [8, 8, 4], thread = [2, 4], vector = 4, unroll = 4, shared = true>} {
  %m = nn.matmul %x, %w : (tensor<5x12xf32>, tensor<12x9xf32>) -> tensor<5x9xf32>
  %y = nn.add %m, %c : (tensor<5x9xf32>, tensor<9xf32>) -> tensor<5x9xf32>
  %r = nn.relu %y : tensor<5x9xf32>
  web.yield %r : tensor<5x9xf32>
}
// CHECK-LABEL: // kernel @matmul_0 grid [2, 1, 1]
// CHECK:       var<workgroup> ta: array<f32, 32>;
// CHECK-NEXT:  var<workgroup> tb: array<vec4<f32>, 8>;
// CHECK:       @compute @workgroup_size(2, 4, 1)
// CHECK:         var c{{[0-9]+}}: vec4<f32> = vec4<f32>();
// CHECK-NEXT:    var c{{[0-9]+}}: vec4<f32> = vec4<f32>();
// CHECK:         for (var k{{[0-9]+}} = 0i; k{{[0-9]+}} < 12i; k{{[0-9]+}} = k{{[0-9]+}} + 4i) {
// CHECK:         workgroupBarrier();
// CHECK:         = fma(vec4<f32>(a{{[0-9]+}}), b{{[0-9]+}}, c{{[0-9]+}});
// CHECK:         workgroupBarrier();
// CHECK:         if (om{{[0-9]+}} < 5i) {
// CHECK:           if (on{{[0-9]+}} < 9i) {
// CHECK:             = (c{{[0-9]+}}[0] + v{{[0-9]+}});
// CHECK-NEXT:        = max(v{{[0-9]+}}, 0.0f);

// A softmax row reduction: one workgroup a row, max then sum, each a tree in workgroup memory.
web.kernel @softmax_0(%s: tensor<3x10xf32>) -> tensor<3x10xf32> attributes {template = "row_reduce", schedule = #web.schedule<workgroup = [4, 1, 1], tile = [0, 0, 0], thread = [1, 1], vector = 1, unroll = 1, shared = false>} {
  %p = nn.softmax %s {axis = -1 : i64} : tensor<3x10xf32>
  web.yield %p : tensor<3x10xf32>
}
// CHECK-LABEL: // kernel @softmax_0 grid [3, 1, 1]
// CHECK:       var<workgroup> red: array<f32, 4>;
// CHECK:         if (row1 >= 3i) { return; }
// CHECK:         var a3: f32 = nn_f32_bits(0xff800000u);
// CHECK:           a3 = max(a3, v{{[0-9]+}});
// CHECK:         red[l2] = a3;
// CHECK-NEXT:    workgroupBarrier();
// CHECK-NEXT:    if (l2 < 2i) { red[l2] = max(red[l2], red[l2 + 2i]); }
// CHECK-NEXT:    workgroupBarrier();
// CHECK-NEXT:    if (l2 < 1i) { red[l2] = max(red[l2], red[l2 + 1i]); }
// CHECK-NEXT:    workgroupBarrier();
// CHECK:         = exp(

// RUN: nnjit-opt %s --split-input-file -t nnjit-wat | filecheck %s
// RUN: nnjit-opt %s --split-input-file -t "nnjit-wat{relaxed=true}" | filecheck %s --check-prefix=RELAXED

// Each web.dispatch of @main is one exported function at fixed addresses: inputs from byte 64 on,
// then weights, slots and scratch, each 16-byte aligned; @main's reshape aliases its operand.

// An elementwise kernel with a broadcast bias: along a row both operands are contiguous, so both
// are `v128.load`s whose buffer base and constant offset sit in the offset immediate (two vectors
// per iteration: the second at +16 bytes); the ragged end of each row (10 = 2 vectors + 2) is scalar.
builtin.module attributes {web.target = "wasm"} {
  web.kernel @fused_0(%a: tensor<3x10xf32>, %b: tensor<10xf32>) -> tensor<3x10xf32> attributes {template = "elementwise", schedule = #web.schedule<workgroup = [1, 1, 1], tile = [0, 0, 0], thread = [1, 1], vector = 4, unroll = 2, shared = false>} {
    %s = nn.add %a, %b : (tensor<3x10xf32>, tensor<10xf32>) -> tensor<3x10xf32>
    web.yield %s : tensor<3x10xf32>
  }
  func.func @main(%x: tensor<3x10xf32> {nn.name = "x"}, %y: tensor<10xf32> {nn.name = "y"}) -> (tensor<30xf32> {nn.name = "z"}) {
    %0 = web.dispatch @fused_0(%x, %y) {slot = 0 : i64} : (tensor<3x10xf32>, tensor<10xf32>) -> tensor<3x10xf32>
    %1 = nn.reshape %0 : tensor<3x10xf32> -> tensor<30xf32>
    func.return %1 : tensor<30xf32>
  }
}
// CHECK:       (func $k0_fused_0 (export "k0_fused_0")
// CHECK:         (local.set $o1 (i32.const 0))
// CHECK-NEXT:    (block $b2
// CHECK-NEXT:      (loop $l3
// CHECK-NEXT:        (local.set $c4 (i32.const 0))
// CHECK-NEXT:        (block $b5
// CHECK-NEXT:          (loop $l6
// CHECK-NEXT:            (local.set $v7 (i32.mul (local.get $o1) (i32.const 40)))
// CHECK-NEXT:            (local.set $v8 (i32.mul (local.get $c4) (i32.const 4)))
// CHECK-NEXT:            (local.set $v9 (i32.add (local.get $v7) (local.get $v8)))
// CHECK-NEXT:            (local.set $v10 (v128.load offset=64 (local.get $v9)))
// CHECK-NEXT:            (local.set $v11 (v128.load offset=192 (local.get $v8)))
// CHECK-NEXT:            (local.set $v12 (f32x4.add (local.get $v10) (local.get $v11)))
// CHECK-NEXT:            (v128.store offset=240 (local.get $v9) (local.get $v12))
// CHECK-NEXT:            (local.set $v13 (v128.load offset=80 (local.get $v9)))
// CHECK-NEXT:            (local.set $v14 (v128.load offset=208 (local.get $v8)))
// CHECK-NEXT:            (local.set $v15 (f32x4.add (local.get $v13) (local.get $v14)))
// CHECK-NEXT:            (v128.store offset=256 (local.get $v9) (local.get $v15))
// CHECK-NEXT:            (br_if $l6 (i32.lt_s (local.tee $c4 (i32.add (local.get $c4) (i32.const 8))) (i32.const 8)))
// CHECK-NEXT:          )
// CHECK-NEXT:        )
// CHECK-NEXT:        (local.set $v16 (i32.mul (local.get $o1) (i32.const 40)))
// CHECK-NEXT:        (local.set $v17 (f32.load offset=96 (local.get $v16)))
// CHECK-NEXT:        (local.set $v18 (f32.load offset=224 (i32.const 0)))
// CHECK-NEXT:        (local.set $v19 (f32.add (local.get $v17) (local.get $v18)))
// CHECK-NEXT:        (f32.store offset=272 (local.get $v16) (local.get $v19))
// CHECK:             (br_if $l3 (i32.lt_s (local.tee $o1 (i32.add (local.get $o1) (i32.const 1))) (i32.const 3)))

// -----

// A matmul micro-kernel, register block 2 x 8: per k step two B vectors (`v128.load`), one
// `v128.load32_splat` per A row (the broadcast is the load), four multiply-adds; the unrolled k
// steps differ only in offset immediates (+4 bytes of A, +N*4 bytes of B). The bias epilogue runs
// at the store.
builtin.module attributes {web.target = "wasm"} {
  web.kernel @matmul_0(%a: tensor<2x4xf32>, %b: tensor<4x8xf32>, %c: tensor<8xf32>) -> tensor<2x8xf32> attributes {template = "matmul", schedule = #web.schedule<workgroup = [1, 1, 1], tile = [2, 8, 4], thread = [2, 8], vector = 4, unroll = 2, shared = false>} {
    %m = nn.matmul %a, %b : (tensor<2x4xf32>, tensor<4x8xf32>) -> tensor<2x8xf32>
    %s = nn.add %m, %c : (tensor<2x8xf32>, tensor<8xf32>) -> tensor<2x8xf32>
    web.yield %s : tensor<2x8xf32>
  }
  func.func @main(%x: tensor<2x4xf32>, %w: tensor<4x8xf32>, %c: tensor<8xf32>) -> tensor<2x8xf32> {
    %0 = web.dispatch @matmul_0(%x, %w, %c) : (tensor<2x4xf32>, tensor<4x8xf32>, tensor<8xf32>) -> tensor<2x8xf32>
    func.return %0 : tensor<2x8xf32>
  }
}
// CHECK:       (func $k0_matmul_0 (export "k0_matmul_0")
// CHECK:         (loop
// CHECK:           (local.set [[B0:\$v[0-9]+]] (v128.load offset=96 [[KB:\(local.get \$v[0-9]+\)]]))
// CHECK-NEXT:      (local.set [[B1:\$v[0-9]+]] (v128.load offset=112 [[KB]]))
// CHECK:           (local.set [[A0:\$v[0-9]+]] (v128.load32_splat offset=64 [[KA:\(local.get \$v[0-9]+\)]]))
// CHECK-NEXT:      (local.set $acc{{[0-9]+}} (f32x4.add (local.get $acc{{[0-9]+}}) (f32x4.mul (local.get [[A0]]) (local.get [[B0]]))))
// CHECK-NEXT:      (local.set $acc{{[0-9]+}} (f32x4.add (local.get $acc{{[0-9]+}}) (f32x4.mul (local.get [[A0]]) (local.get [[B1]]))))
// CHECK-NEXT:      (local.set [[A1:\$v[0-9]+]] (v128.load32_splat offset=80 [[KA]]))
// CHECK:           (v128.load offset=128 [[KB]])
// CHECK:           (v128.load32_splat offset=68 [[KA]])
// CHECK:           (v128.load32_splat offset=84 [[KA]])
// CHECK:         (local.set {{\$v[0-9]+}} (v128.load offset=224 [[COL:\(local.get \$v[0-9]+\)]]))
// CHECK:         (v128.store offset=256
// CHECK:         (v128.store offset=272
// CHECK:         (v128.store offset=288
// CHECK:         (v128.store offset=304

// RELAXED:       ;; relaxed-simd on: f32x4.relaxed_madd in matmul / conv
// RELAXED:       (f32x4.relaxed_madd

// RUN: nnjit-opt %s -t "nnjit-wat{threads=true}" | filecheck %s
// RUN: nnjit-opt %s -t nnjit-wat | filecheck %s --check-prefix=PLAIN

// The threaded program: the memory is imported and shared, every kernel takes (tid, nt) and runs
// its chunk of the outermost loop. The elementwise kernel splits its 64 rows; the matmul splits M
// in register blocks of 8 rows (6 blocks: 42 = 5 x 8 + an edge of 2 rows, done by the thread whose
// range ends at 42) and packs B into its own scratch copy (512 words a thread). `run` calls every
// kernel as thread 0 of 1.
builtin.module attributes {web.target = "wasm"} {
  web.kernel @fused_0(%a: tensor<64x10xf32>) -> tensor<64x10xf32> attributes {template = "elementwise", schedule = #web.schedule<workgroup = [1, 1, 1], tile = [0, 0, 0], thread = [1, 1], vector = 4, unroll = 2, shared = false>} {
    %s = nn.relu %a : tensor<64x10xf32>
    web.yield %s : tensor<64x10xf32>
  }
  web.kernel @matmul_0(%a: tensor<42x64xf32>, %b: tensor<64x16xf32>) -> tensor<42x16xf32> attributes {template = "matmul", schedule = #web.schedule<workgroup = [1, 1, 1], tile = [16, 16, 32], thread = [8, 8], vector = 4, unroll = 1, shared = true>} {
    %m = nn.matmul %a, %b : (tensor<42x64xf32>, tensor<64x16xf32>) -> tensor<42x16xf32>
    web.yield %m : tensor<42x16xf32>
  }
  func.func @main(%x: tensor<64x10xf32> {nn.name = "x"}, %p: tensor<42x64xf32> {nn.name = "p"}, %q: tensor<64x16xf32> {nn.name = "q"}) -> (tensor<64x10xf32> {nn.name = "y"}, tensor<42x16xf32> {nn.name = "z"}) {
    %0 = web.dispatch @fused_0(%x) : (tensor<64x10xf32>) -> tensor<64x10xf32>
    %1 = web.dispatch @matmul_0(%p, %q) : (tensor<42x64xf32>, tensor<64x16xf32>) -> tensor<42x16xf32>
    func.return %0, %1 : tensor<64x10xf32>, tensor<42x16xf32>
  }
}
// CHECK:       ;; threads: up to 8, 2 of 2 steps parallel
// CHECK-NEXT:  (import "env" "memory" (memory 1 1 shared))
// CHECK-NEXT:  (func $k0_fused_0 (export "k0_fused_0") (param $tid i32) (param $nt i32)
// CHECK:         (local.set $ochunk1 (i32.div_u (i32.add (local.get $nt) (i32.const 63)) (local.get $nt)))
// CHECK-NEXT:    (local.set $olo2 (i32.mul (local.get $tid) (local.get $ochunk1)))
// CHECK-NEXT:    (local.set $ohi3 (i32.add (local.get $olo2) (local.get $ochunk1)))
// CHECK-NEXT:    (local.set $ohi3 (select (local.get $ohi3) (i32.const 64) (i32.lt_s (local.get $ohi3) (i32.const 64))))
// CHECK-NEXT:    (local.set $o4 (local.get $olo2))
// CHECK-NEXT:    (block $b5
// CHECK-NEXT:      (loop $l6
// CHECK-NEXT:        (br_if $b5 (i32.ge_s (local.get $o4) (local.get $ohi3)))
// CHECK:       (func $k1_matmul_0 (export "k1_matmul_0") (param $tid i32) (param $nt i32)
// CHECK:         (local.set $mchunk1 (i32.mul (i32.div_u (i32.add (local.get $nt) (i32.const 5)) (local.get $nt)) (i32.const 8)))
// CHECK-NEXT:    (local.set $mlo2 (i32.mul (local.get $tid) (local.get $mchunk1)))
// CHECK-NEXT:    (local.set $mhi3 (i32.add (local.get $mlo2) (local.get $mchunk1)))
// CHECK-NEXT:    (local.set $mhi3 (select (local.get $mhi3) (i32.const 42) (i32.lt_s (local.get $mhi3) (i32.const 42))))
// CHECK-NEXT:    (local.set $fullhi4 (select (local.get $mhi3) (i32.const 40) (i32.lt_s (local.get $mhi3) (i32.const 40))))
// CHECK-NEXT:    (local.set $soff5 (i32.mul (local.get $tid) (i32.const 512)))
// CHECK-NEXT:    (if (i32.lt_s (local.get $mlo2) (local.get $mhi3))
// CHECK:         (if (i32.and (i32.ge_s (i32.add (local.get $mc28) (i32.const 16)) (i32.const 42)) (i32.eq (local.get $mhi3) (i32.const 42)))
// CHECK:         (call $k0_fused_0 (i32.const 0) (i32.const 1))
// CHECK-NEXT:    (call $k1_matmul_0 (i32.const 0) (i32.const 1))

// PLAIN:       ;; relaxed-simd off: f32x4.mul + f32x4.add
// PLAIN-NEXT:  (memory (export "memory") 1)
// PLAIN-NEXT:  (func $k0_fused_0 (export "k0_fused_0")
// PLAIN-NOT:   $tid
// PLAIN:         (call $k0_fused_0)
// PLAIN-NEXT:    (call $k1_matmul_0)

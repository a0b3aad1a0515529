// RUN: nnjit-opt %s -p nn-decompose-gemm | filecheck %s

// Gemm becomes matmul + transposes + an elementwise epilogue, keeping only the non-identity parts.

func.func @plain(%a: tensor<4x8xf32>, %b: tensor<8x16xf32>) -> tensor<4x16xf32> {
  %y = nn.gemm %a, %b : (tensor<4x8xf32>, tensor<8x16xf32>) -> tensor<4x16xf32>
  func.return %y : tensor<4x16xf32>
}
// CHECK-LABEL: func.func @plain(
// CHECK-NEXT:    %y = nn.matmul %a, %b : (tensor<4x8xf32>, tensor<8x16xf32>) -> tensor<4x16xf32>
// CHECK-NEXT:    func.return %y : tensor<4x16xf32>

func.func @everything(%a: tensor<8x4xf32>, %b: tensor<16x8xf32>, %c: tensor<16xf32>) -> tensor<4x16xf32> {
  %y = nn.gemm %a, %b, %c {alpha = 5.000000e-01 : f32, beta = 2.000000e+00 : f32, trans_a, trans_b} : (tensor<8x4xf32>, tensor<16x8xf32>, tensor<16xf32>) -> tensor<4x16xf32>
  func.return %y : tensor<4x16xf32>
}
// CHECK-LABEL: func.func @everything(
// CHECK-NEXT:    %[[AT:.*]] = nn.transpose %a {perm = array<i64: 1, 0>} : (tensor<8x4xf32>) -> tensor<4x8xf32>
// CHECK-NEXT:    %[[BT:.*]] = nn.transpose %b {perm = array<i64: 1, 0>} : (tensor<16x8xf32>) -> tensor<8x16xf32>
// CHECK-NEXT:    %[[M:.*]] = nn.matmul %[[AT]], %[[BT]] : (tensor<4x8xf32>, tensor<8x16xf32>) -> tensor<4x16xf32>
// CHECK-NEXT:    %[[ALPHA:.*]] = nn.constant dense<5.000000e-01> : tensor<f32>
// CHECK-NEXT:    %[[SCALED:.*]] = nn.mul %[[M]], %[[ALPHA]] : (tensor<4x16xf32>, tensor<f32>) -> tensor<4x16xf32>
// CHECK-NEXT:    %[[BETA:.*]] = nn.constant dense<2.000000e+00> : tensor<f32>
// CHECK-NEXT:    %[[BIAS:.*]] = nn.mul %c, %[[BETA]] : (tensor<16xf32>, tensor<f32>) -> tensor<16xf32>
// CHECK-NEXT:    %[[Y:.*]] = nn.add %[[SCALED]], %[[BIAS]] : (tensor<4x16xf32>, tensor<16xf32>) -> tensor<4x16xf32>
// CHECK-NEXT:    func.return %[[Y]] : tensor<4x16xf32>

// RUN: nnjit-opt %s -p canonicalize | filecheck %s

// nn folds, identities and compositions (nnjit/passes/canonicalization_patterns.py) under the stock
// canonicalize pass, each with the cases that must stay as they are.

// Constant folding

func.func @fold_binary() -> tensor<2xf32> {
  %a = nn.constant dense<[1.0, 2.0]> : tensor<2xf32>
  %b = nn.constant dense<3.0> : tensor<f32>
  %c = nn.mul %a, %b : (tensor<2xf32>, tensor<f32>) -> tensor<2xf32>
  %d = nn.neg %c : tensor<2xf32>
  func.return %d : tensor<2xf32>
}
// CHECK-LABEL: func.func @fold_binary(
// CHECK-NEXT:    %d = nn.constant dense<[-3.000000e+00, -6.000000e+00]> : tensor<2xf32>
// CHECK-NEXT:    func.return %d : tensor<2xf32>
// CHECK-NEXT:  }

func.func @fold_shape_arithmetic() -> tensor<3xi64> {
  %s = nn.constant dense<[2, 8, 64]> : tensor<3xi64>
  %i = nn.constant dense<[2, 0]> : tensor<2xi64>
  %g = nn.gather %s, %i {axis = 0 : i64} : (tensor<3xi64>, tensor<2xi64>) -> tensor<2xi64>
  %m = nn.constant dense<-1> : tensor<1xi64>
  %c = nn.concat %g, %m {axis = 0 : i64} : (tensor<2xi64>, tensor<1xi64>) -> tensor<3xi64>
  func.return %c : tensor<3xi64>
}
// CHECK-LABEL: func.func @fold_shape_arithmetic(
// CHECK-NEXT:    %c = nn.constant dense<[64, 2, -1]> : tensor<3xi64>
// CHECK-NEXT:    func.return %c : tensor<3xi64>
// CHECK-NEXT:  }

func.func @fold_compare_and_reduce() -> (tensor<3xi1>, tensor<2x1xf32>) {
  %l = nn.constant dense<[1.0, 5.0, -2.0]> : tensor<3xf32>
  %m = nn.constant dense<2.0> : tensor<3xf32>
  %lt = nn.less %l, %m : (tensor<3xf32>, tensor<3xf32>) -> tensor<3xi1>
  %t = nn.constant dense<[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]> : tensor<2x3xf32>
  %r = nn.reduce_sum %t {axes = array<i64: 1>} : (tensor<2x3xf32>) -> tensor<2x1xf32>
  func.return %lt, %r : tensor<3xi1>, tensor<2x1xf32>
}
// CHECK-LABEL: func.func @fold_compare_and_reduce(
// CHECK-NEXT:    %lt = nn.constant dense<[true, false, true]> : tensor<3xi1>
// CHECK-NEXT:    %r = nn.constant dense<[[6.000000e+00], [1.500000e+01]]> : tensor<2x1xf32>
// CHECK-NEXT:    func.return %lt, %r : tensor<3xi1>, tensor<2x1xf32>
// CHECK-NEXT:  }

func.func @no_fold_over_limit() -> tensor<64x65xf32> {
  %a = nn.constant dense<1.0> : tensor<f32>
  %e = nn.expand %a : tensor<f32> -> tensor<64x65xf32>
  func.return %e : tensor<64x65xf32>
}
// CHECK-LABEL: func.func @no_fold_over_limit(
// CHECK-NEXT:    %a = nn.constant dense<1.000000e+00> : tensor<f32>
// CHECK-NEXT:    %e = nn.expand %a : tensor<f32> -> tensor<64x65xf32>
// CHECK-NEXT:    func.return %e : tensor<64x65xf32>
// CHECK-NEXT:  }

func.func @no_fold_resource() -> tensor<4xf32> {
  %w = nn.constant dense_resource<w0> : tensor<4xf32>
  %e = nn.exp %w : tensor<4xf32>
  func.return %e : tensor<4xf32>
}
// CHECK-LABEL: func.func @no_fold_resource(
// CHECK-NEXT:    %w = nn.constant dense_resource<w0> : tensor<4xf32>
// CHECK-NEXT:    %e = nn.exp %w : tensor<4xf32>
// CHECK-NEXT:    func.return %e : tensor<4xf32>
// CHECK-NEXT:  }

func.func @no_fold_non_constant(%x: tensor<2xf32>) -> tensor<2xf32> {
  %a = nn.constant dense<[1.0, 2.0]> : tensor<2xf32>
  %c = nn.add %a, %x : (tensor<2xf32>, tensor<2xf32>) -> tensor<2xf32>
  func.return %c : tensor<2xf32>
}
// CHECK-LABEL: func.func @no_fold_non_constant(
// CHECK-NEXT:    %a = nn.constant dense<[1.000000e+00, 2.000000e+00]> : tensor<2xf32>
// CHECK-NEXT:    %c = nn.add %a, %x : (tensor<2xf32>, tensor<2xf32>) -> tensor<2xf32>
// CHECK-NEXT:    func.return %c : tensor<2xf32>
// CHECK-NEXT:  }

func.func @no_fold_division_by_zero() -> tensor<2xi64> {
  %a = nn.constant dense<[1, 2]> : tensor<2xi64>
  %z = nn.constant dense<0> : tensor<2xi64>
  %q = nn.div %a, %z : (tensor<2xi64>, tensor<2xi64>) -> tensor<2xi64>
  func.return %q : tensor<2xi64>
}
// CHECK-LABEL: func.func @no_fold_division_by_zero(
// CHECK-NEXT:    %a = nn.constant dense<[1, 2]> : tensor<2xi64>
// CHECK-NEXT:    %z = nn.constant dense<0> : tensor<2xi64>
// CHECK-NEXT:    %q = nn.div %a, %z : (tensor<2xi64>, tensor<2xi64>) -> tensor<2xi64>
// CHECK-NEXT:    func.return %q : tensor<2xi64>
// CHECK-NEXT:  }

// Identities

func.func @reshape_expand_cast_same_type(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %r = nn.reshape %x : tensor<2x3xf32> -> tensor<2x3xf32>
  %e = nn.expand %r : tensor<2x3xf32> -> tensor<2x3xf32>
  %c = nn.cast %e : tensor<2x3xf32> -> tensor<2x3xf32>
  func.return %c : tensor<2x3xf32>
}
// CHECK-LABEL: func.func @reshape_expand_cast_same_type(
// CHECK-NEXT:    func.return %x : tensor<2x3xf32>
// CHECK-NEXT:  }

func.func @reshape_expand_cast_kept(%x: tensor<1x3xf32>) -> (tensor<3xf32>, tensor<2x3xf32>, tensor<1x3xf16>) {
  %r = nn.reshape %x : tensor<1x3xf32> -> tensor<3xf32>
  %e = nn.expand %x : tensor<1x3xf32> -> tensor<2x3xf32>
  %c = nn.cast %x : tensor<1x3xf32> -> tensor<1x3xf16>
  func.return %r, %e, %c : tensor<3xf32>, tensor<2x3xf32>, tensor<1x3xf16>
}
// CHECK-LABEL: func.func @reshape_expand_cast_kept(
// CHECK-NEXT:    %r = nn.reshape %x : tensor<1x3xf32> -> tensor<3xf32>
// CHECK-NEXT:    %e = nn.expand %x : tensor<1x3xf32> -> tensor<2x3xf32>
// CHECK-NEXT:    %c = nn.cast %x : tensor<1x3xf32> -> tensor<1x3xf16>
// CHECK-NEXT:    func.return %r, %e, %c : tensor<3xf32>, tensor<2x3xf32>, tensor<1x3xf16>
// CHECK-NEXT:  }

func.func @transpose_identity(%x: tensor<2x3xf32>) -> (tensor<2x3xf32>, tensor<3x2xf32>) {
  %i = nn.transpose %x {perm = array<i64: 0, 1>} : (tensor<2x3xf32>) -> tensor<2x3xf32>
  %t = nn.transpose %x {perm = array<i64: 1, 0>} : (tensor<2x3xf32>) -> tensor<3x2xf32>
  func.return %i, %t : tensor<2x3xf32>, tensor<3x2xf32>
}
// CHECK-LABEL: func.func @transpose_identity(
// CHECK-NEXT:    %t = nn.transpose %x {perm = array<i64: 1, 0>} : (tensor<2x3xf32>) -> tensor<3x2xf32>
// CHECK-NEXT:    func.return %x, %t : tensor<2x3xf32>, tensor<3x2xf32>
// CHECK-NEXT:  }

func.func @slice_whole(%x: tensor<2x3xf32>) -> (tensor<2x3xf32>, tensor<2x2xf32>, tensor<2x3xf32>) {
  %w = nn.slice %x {starts = array<i64: 0, 0>, ends = array<i64: 2, 100>, steps = array<i64: 1, 1>} : (tensor<2x3xf32>) -> tensor<2x3xf32>
  %p = nn.slice %x {starts = array<i64: 0, 1>, ends = array<i64: 2, 3>, steps = array<i64: 1, 1>} : (tensor<2x3xf32>) -> tensor<2x2xf32>
  %r = nn.slice %x {starts = array<i64: 0, -1>, ends = array<i64: 2, -4>, steps = array<i64: 1, -1>} : (tensor<2x3xf32>) -> tensor<2x3xf32>
  func.return %w, %p, %r : tensor<2x3xf32>, tensor<2x2xf32>, tensor<2x3xf32>
}
// CHECK-LABEL: func.func @slice_whole(
// CHECK-NEXT:    %p = nn.slice %x {starts = array<i64: 0, 1>, ends = array<i64: 2, 3>, steps = array<i64: 1, 1>} : (tensor<2x3xf32>) -> tensor<2x2xf32>
// CHECK-NEXT:    %r = nn.slice %x {starts = array<i64: 0, -1>, ends = array<i64: 2, -4>, steps = array<i64: 1, -1>} : (tensor<2x3xf32>) -> tensor<2x3xf32>
// CHECK-NEXT:    func.return %x, %p, %r : tensor<2x3xf32>, tensor<2x2xf32>, tensor<2x3xf32>
// CHECK-NEXT:  }

func.func @concat_single(%x: tensor<2x3xf32>) -> (tensor<2x3xf32>, tensor<4x3xf32>) {
  %one = nn.concat %x {axis = 0 : i64} : (tensor<2x3xf32>) -> tensor<2x3xf32>
  %two = nn.concat %x, %x {axis = 0 : i64} : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<4x3xf32>
  func.return %one, %two : tensor<2x3xf32>, tensor<4x3xf32>
}
// CHECK-LABEL: func.func @concat_single(
// CHECK-NEXT:    %two = nn.concat %x, %x {axis = 0 : i64} : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<4x3xf32>
// CHECK-NEXT:    func.return %x, %two : tensor<2x3xf32>, tensor<4x3xf32>
// CHECK-NEXT:  }

func.func @neutral_elements(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %zero = nn.constant dense<0.0> : tensor<f32>
  %one = nn.constant dense<1.0> : tensor<3xf32>
  %0 = nn.add %x, %zero : (tensor<2x3xf32>, tensor<f32>) -> tensor<2x3xf32>
  %1 = nn.add %zero, %0 : (tensor<f32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  %2 = nn.sub %1, %zero : (tensor<2x3xf32>, tensor<f32>) -> tensor<2x3xf32>
  %3 = nn.mul %2, %one : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  %4 = nn.mul %one, %3 : (tensor<3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  %5 = nn.div %4, %one : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  func.return %5 : tensor<2x3xf32>
}
// CHECK-LABEL: func.func @neutral_elements(
// CHECK-NEXT:    func.return %x : tensor<2x3xf32>
// CHECK-NEXT:  }

func.func @neutral_elements_kept(%x: tensor<3xf32>) -> (tensor<3xf32>, tensor<3xf32>, tensor<2x3xf32>, tensor<3xf32>, tensor<3xf32>) {
  %zero = nn.constant dense<0.0> : tensor<f32>
  %one = nn.constant dense<1.0> : tensor<f32>
  %half = nn.constant dense<0.5> : tensor<f32>
  %zeros = nn.constant dense<0.0> : tensor<2x3xf32>
  %mixed = nn.constant dense<[1.0, 2.0, 1.0]> : tensor<3xf32>
  %0 = nn.sub %zero, %x : (tensor<f32>, tensor<3xf32>) -> tensor<3xf32>
  %1 = nn.div %one, %x : (tensor<f32>, tensor<3xf32>) -> tensor<3xf32>
  %2 = nn.add %x, %zeros : (tensor<3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  %3 = nn.add %x, %half : (tensor<3xf32>, tensor<f32>) -> tensor<3xf32>
  %4 = nn.mul %x, %mixed : (tensor<3xf32>, tensor<3xf32>) -> tensor<3xf32>
  func.return %0, %1, %2, %3, %4 : tensor<3xf32>, tensor<3xf32>, tensor<2x3xf32>, tensor<3xf32>, tensor<3xf32>
}
// CHECK-LABEL: func.func @neutral_elements_kept(
// CHECK-NEXT:    %zero = nn.constant dense<0.000000e+00> : tensor<f32>
// CHECK-NEXT:    %one = nn.constant dense<1.000000e+00> : tensor<f32>
// CHECK-NEXT:    %half = nn.constant dense<5.000000e-01> : tensor<f32>
// CHECK-NEXT:    %zeros = nn.constant dense<0.000000e+00> : tensor<2x3xf32>
// CHECK-NEXT:    %mixed = nn.constant dense<[1.000000e+00, 2.000000e+00, 1.000000e+00]> : tensor<3xf32>
// CHECK-NEXT:    %0 = nn.sub %zero, %x : (tensor<f32>, tensor<3xf32>) -> tensor<3xf32>
// CHECK-NEXT:    %1 = nn.div %one, %x : (tensor<f32>, tensor<3xf32>) -> tensor<3xf32>
// CHECK-NEXT:    %2 = nn.add %x, %zeros : (tensor<3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
// CHECK-NEXT:    %3 = nn.add %x, %half : (tensor<3xf32>, tensor<f32>) -> tensor<3xf32>
// CHECK-NEXT:    %4 = nn.mul %x, %mixed : (tensor<3xf32>, tensor<3xf32>) -> tensor<3xf32>
// CHECK-NEXT:    func.return %0, %1, %2, %3, %4 : tensor<3xf32>, tensor<3xf32>, tensor<2x3xf32>, tensor<3xf32>, tensor<3xf32>
// CHECK-NEXT:  }

// Compositions

func.func @reshape_of_reshape(%x: tensor<2x3x4xf32>) -> (tensor<24xf32>, tensor<2x3x4xf32>) {
  %a = nn.reshape %x : tensor<2x3x4xf32> -> tensor<6x4xf32>
  %b = nn.reshape %a : tensor<6x4xf32> -> tensor<24xf32>
  %c = nn.reshape %x : tensor<2x3x4xf32> -> tensor<4x6xf32>
  %d = nn.reshape %c : tensor<4x6xf32> -> tensor<2x3x4xf32>
  func.return %b, %d : tensor<24xf32>, tensor<2x3x4xf32>
}
// CHECK-LABEL: func.func @reshape_of_reshape(
// CHECK-NEXT:    %b = nn.reshape %x : tensor<2x3x4xf32> -> tensor<24xf32>
// CHECK-NEXT:    func.return %b, %x : tensor<24xf32>, tensor<2x3x4xf32>
// CHECK-NEXT:  }

func.func @transpose_of_transpose(%x: tensor<2x3x4xf32>) -> (tensor<3x2x4xf32>, tensor<2x3x4xf32>) {
  %a = nn.transpose %x {perm = array<i64: 2, 0, 1>} : (tensor<2x3x4xf32>) -> tensor<4x2x3xf32>
  %b = nn.transpose %a {perm = array<i64: 2, 1, 0>} : (tensor<4x2x3xf32>) -> tensor<3x2x4xf32>
  %c = nn.transpose %x {perm = array<i64: 0, 2, 1>} : (tensor<2x3x4xf32>) -> tensor<2x4x3xf32>
  %d = nn.transpose %c {perm = array<i64: 0, 2, 1>} : (tensor<2x4x3xf32>) -> tensor<2x3x4xf32>
  func.return %b, %d : tensor<3x2x4xf32>, tensor<2x3x4xf32>
}
// CHECK-LABEL: func.func @transpose_of_transpose(
// CHECK-NEXT:    %b = nn.transpose %x {perm = array<i64: 1, 0, 2>} : (tensor<2x3x4xf32>) -> tensor<3x2x4xf32>
// CHECK-NEXT:    func.return %b, %x : tensor<3x2x4xf32>, tensor<2x3x4xf32>
// CHECK-NEXT:  }

func.func @neg_of_neg(%x: tensor<4xf32>) -> (tensor<4xf32>, tensor<4xf32>) {
  %a = nn.neg %x : tensor<4xf32>
  %b = nn.neg %a : tensor<4xf32>
  func.return %b, %a : tensor<4xf32>, tensor<4xf32>
}
// CHECK-LABEL: func.func @neg_of_neg(
// CHECK-NEXT:    %a = nn.neg %x : tensor<4xf32>
// CHECK-NEXT:    func.return %x, %a : tensor<4xf32>, tensor<4xf32>
// CHECK-NEXT:  }

// Dead code

func.func @dead_code(%x: tensor<4xf32>) -> tensor<4xf32> {
  %dead = nn.exp %x : tensor<4xf32>
  %dead2 = nn.matmul %dead, %dead : (tensor<4xf32>, tensor<4xf32>) -> tensor<f32>
  %live = nn.relu %x : tensor<4xf32>
  func.return %live : tensor<4xf32>
}
// CHECK-LABEL: func.func @dead_code(
// CHECK-NEXT:    %live = nn.relu %x : tensor<4xf32>
// CHECK-NEXT:    func.return %live : tensor<4xf32>
// CHECK-NEXT:  }

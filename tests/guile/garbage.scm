;;; garbage.scm - builds a lot of garbage of many sorts, keeping some of
;;; it, and prints what it computes; run with and without mheap preloaded,
;;; the output must be the same.
(use-modules (rnrs bytevectors) (ice-9 threads) (srfi srfi-1))

(define (say . xs) (for-each display xs) (newline))

;; Lists: many short-lived ones, a checksum of each.
(define (list-work n)
  (let loop ((i 0) (acc 0))
    (if (= i n) acc
        (let ((l (iota 100 i)))
          (loop (+ i 1) (+ acc (apply + (map (lambda (x) (* x 3)) l))))))))
(say "lists: " (list-work 20000))

;; Vectors, kept in a tree that survives collections.
(define (make-tree depth)
  (if (= depth 0) (make-vector 3 depth)
      (vector depth (make-tree (- depth 1)) (make-tree (- depth 1)))))
(define (tree-sum t)
  (if (vector? (vector-ref t 1))
      (+ (vector-ref t 0) (tree-sum (vector-ref t 1)) (tree-sum (vector-ref t 2)))
      (vector-ref t 0)))
(define kept (make-tree 16))
(let loop ((i 0)) (when (< i 20) (make-tree 12) (loop (+ i 1))))
(gc)
(say "tree: " (tree-sum kept))

;; Strings.
(define (string-work n)
  (let loop ((i 0) (len 0))
    (if (= i n) len
        (let ((s (string-append "item-" (number->string i) "-" (make-string (modulo i 50) #\x))))
          (loop (+ i 1) (+ len (string-length (string-upcase s))))))))
(say "strings: " (string-work 100000))

;; Hash tables.
(define h (make-hash-table))
(let loop ((i 0))
  (when (< i 50000)
    (hash-set! h i (number->string i))
    (when (odd? i) (hash-remove! h (- i 1)))
    (loop (+ i 1))))
(gc)
(say "hash: " (hash-count (const #t) h) " " (hash-ref h 4999))

;; Weak tables: keys dropped become collectable; those kept stay.
(define wk (make-weak-key-hash-table))
(define keep-keys (map (lambda (i) (list 'k i)) (iota 100)))
(for-each (lambda (k) (hash-set! wk k (cadr k))) keep-keys)
(let loop ((i 0))
  (when (< i 20000) (hash-set! wk (list 'garbage i) i) (loop (+ i 1))))
(gc) (gc)
(say "weak kept: " (every (lambda (k) (eqv? (hash-ref wk k) (cadr k))) keep-keys))
(say "weak size at most all: " (<= (hash-fold (lambda (k v n) (+ n 1)) 0 wk) 20100))
(define wv (make-weak-value-hash-table))
(define vals (map (lambda (i) (make-string 10 #\v)) (iota 50)))
(for-each (lambda (i v) (hash-set! wv i v)) (iota 50) vals)
(gc)
(say "weak values kept: " (every (lambda (i v) (eq? (hash-ref wv i) v)) (iota 50) vals))

;; Guardians: dropped objects come back once collected.
(define g (make-guardian))
(let loop ((i 0)) (when (< i 1000) (g (list 'guarded i)) (loop (+ i 1))))
(let loop ((n 0)) (when (< n 5) (gc) (loop (+ n 1))))
(define back (let loop ((n 0)) (if (g) (loop (+ n 1)) n)))
(say "guardian returned some: " (> back 0))

;; Bytevectors.
(define (bv-work n)
  (let loop ((i 0) (acc 0))
    (if (= i n) acc
        (let ((bv (make-bytevector 1000 (modulo i 256))))
          (bytevector-u8-set! bv 7 1)
          (loop (+ i 1) (+ acc (bytevector-u8-ref bv 3) (bytevector-u8-ref bv 7)))))))
(say "bytevectors: " (bv-work 20000))
(define big (make-bytevector (* 4 1024 1024) 1))
(gc)
(say "big bytevector: " (bytevector-u8-ref big (* 3 1024 1024)))

;; Closures and continuations.
(define (make-counter) (let ((n 0)) (lambda () (set! n (+ n 1)) n)))
(define counters (map (lambda (i) (make-counter)) (iota 1000)))
(for-each (lambda (c) (c) (c)) counters)
(gc)
(say "closures: " (apply + (map (lambda (c) (c)) counters)))
(say "call/cc: " (call-with-current-continuation (lambda (k) (for-each (lambda (x) (when (> x 5) (k x))) (iota 10)) 'none)))

;; Threads, each building garbage of its own.
(define (thread-work id)
  (let loop ((i 0) (acc 0))
    (if (= i 3000) (+ acc id)
        (loop (+ i 1) (+ acc (length (iota (modulo i 40))) (string-length (number->string i)))))))
(if (provided? 'threads)
    (let* ((ts (map (lambda (id) (call-with-new-thread (lambda () (thread-work id)))) (iota 4)))
           (rs (map join-thread ts)))
      (say "threads: " rs))
    (say "threads: " (map thread-work (iota 4))))

;; Weak pairs (typed objects in Guile) in an alist vector.
(define wa (make-weak-key-hash-table 10))
(say "end: " (length keep-keys) " " (vector-length kept))

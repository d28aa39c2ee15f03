"""Generates the SQL script of the SQLite workload (workload 10c).

    python3 gen_sql.py ROWS SEED OUT.sql

Run as `sqlite3 :memory: < OUT.sql`.  Creates two tables, inserts ROWS
orders (and ROWS/10 customers) one INSERT statement at a time in
transactions of 10,000, builds indexes, runs aggregate, join, LIKE, window
and point queries, updates and deletes.  The output depends only on the
arguments.
"""
import random
import sys


def word(rng, lo, hi):
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(lo, hi)))


def main():
    rows, seed, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    rng = random.Random(seed)
    ncust = max(10, rows // 10)
    cities = [word(rng, 4, 10) for _ in range(50)]
    items = [word(rng, 3, 12) for _ in range(500)]
    w = []
    w.append("CREATE TABLE customers(id INTEGER PRIMARY KEY, name TEXT, city TEXT, balance REAL);")
    w.append("CREATE TABLE orders(id INTEGER PRIMARY KEY, customer INTEGER, item TEXT, qty INTEGER, price REAL, note TEXT);")
    w.append("BEGIN;")
    for i in range(1, ncust + 1):
        w.append("INSERT INTO customers VALUES(%d,'%s %s','%s',%.2f);" % (
            i, word(rng, 3, 9), word(rng, 4, 12), rng.choice(cities), rng.uniform(-500, 10000)))
    w.append("COMMIT;")
    for i in range(1, rows + 1):
        if i % 10000 == 1:
            w.append("BEGIN;")
        w.append("INSERT INTO orders(customer,item,qty,price,note) VALUES(%d,'%s',%d,%.2f,'%s');" % (
            rng.randint(1, ncust), rng.choice(items), rng.randint(1, 100), rng.uniform(0.5, 500),
            word(rng, 0, 60)))
        if i % 10000 == 0 or i == rows:
            w.append("COMMIT;")
    w.append("CREATE INDEX orders_customer ON orders(customer);")
    w.append("CREATE INDEX orders_item ON orders(item, qty);")
    w.append("CREATE INDEX customers_city ON customers(city, balance);")
    w.append("SELECT count(*), sum(qty), round(sum(price*qty),2) FROM orders;")
    w.append("SELECT city, count(*), round(avg(balance),2) FROM customers GROUP BY city ORDER BY city;")
    w.append("SELECT c.city, count(o.id), sum(o.qty) FROM orders o JOIN customers c ON c.id = o.customer "
             "GROUP BY c.city ORDER BY 2 DESC, 1 LIMIT 10;")
    w.append("SELECT item, count(*) FROM orders WHERE note LIKE '%ab%' GROUP BY item ORDER BY 2 DESC, 1 LIMIT 10;")
    w.append("SELECT customer, sum(qty) AS q FROM (SELECT customer, qty, sum(qty) OVER (PARTITION BY customer "
             "ORDER BY id) AS run FROM orders) WHERE run > 200 GROUP BY customer ORDER BY q DESC, customer LIMIT 10;")
    w.append("SELECT name, round(balance,2) FROM customers ORDER BY balance DESC, id LIMIT 20;")
    for _ in range(max(100, rows // 50)):
        w.append("SELECT count(*), sum(qty) FROM orders WHERE customer = %d;" % rng.randint(1, ncust))
    w.append("BEGIN;")
    w.append("UPDATE orders SET qty = qty + 1, note = note || 'x' WHERE customer % 7 = 3;")
    for c in cities[:10]:
        w.append("UPDATE customers SET balance = round(balance * 1.01, 2) WHERE city = '%s';" % c)
    w.append("COMMIT;")
    w.append("DELETE FROM orders WHERE qty > 90;")
    w.append("SELECT count(*), sum(qty), round(sum(price),2), sum(length(note)) FROM orders;")
    w.append("SELECT length(group_concat(item || ':' || note, ',')) FROM orders WHERE id % 3 = 0;")
    w.append("SELECT item, count(DISTINCT customer) FROM orders GROUP BY item ORDER BY 2 DESC, 1 LIMIT 10;")
    w.append("VACUUM;")
    w.append("SELECT count(*) FROM orders o JOIN customers c ON c.id = o.customer WHERE c.balance > 5000;")
    with open(out, "w") as f:
        f.write("\n".join(w) + "\n")


if __name__ == "__main__":
    main()

package kora;

import com.google.api.core.ApiFuture;
import com.google.auth.oauth2.AccessToken;
import com.google.auth.oauth2.GoogleCredentials;
import com.google.firebase.FirebaseApp;
import com.google.firebase.FirebaseOptions;
import com.google.firebase.database.DataSnapshot;
import com.google.firebase.database.DatabaseError;
import com.google.firebase.database.DatabaseReference;
import com.google.firebase.database.FirebaseDatabase;
import com.google.firebase.database.MutableData;
import com.google.firebase.database.Query;
import com.google.firebase.database.Transaction;
import com.google.firebase.database.ValueEventListener;
import java.util.ArrayList;
import java.util.Date;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

/**
 * Google's Java Admin SDK (its database client is the one Android's SDK is built on) against a
 * Kora server: set, update, push, a query, a listener, concurrent transactions and
 * onDisconnect, under the path given as the first argument. Either in the SDK's emulator mode
 * (FIREBASE_DATABASE_EMULATOR_HOST; it authenticates as {@code owner}, accepted by Kora with
 * {@code [firebase] mock_tokens = true}) or, with KORA_URL and KORA_ADMIN_SECRET, as in
 * production: over TLS with Kora's admin secret as the credential's access token. Prints
 * {@code ok: ...} per step; exits 1 saying what differed.
 */
public final class AdminCheck {
  private static final long WAIT_SECONDS = 15;

  public static void main(String[] args) throws Exception {
    String base = args[0];
    String secret = System.getenv("KORA_ADMIN_SECRET");
    String url =
        secret != null ? System.getenv("KORA_URL") : "https://demo-kora.firebaseio.com";
    // A fixed access token: what the SDK sends as its admin credential (`gauth`).
    GoogleCredentials credentials =
        GoogleCredentials.create(
            new AccessToken(
                secret != null ? secret : "unused-in-emulator-mode",
                new Date(System.currentTimeMillis() + 3_600_000)));
    FirebaseOptions options =
        FirebaseOptions.builder()
            .setCredentials(credentials)
            .setDatabaseUrl(url)
            .setProjectId("demo-kora")
            .build();
    FirebaseApp app = FirebaseApp.initializeApp(options, "check");
    FirebaseDatabase db = FirebaseDatabase.getInstance(app);
    DatabaseReference root = db.getReference(base);

    wait(root.setValueAsync(Map.of("name", "kora", "stars", 1)));
    wait(root.updateChildrenAsync(Map.of("stars", 2, "meta/by", "java")));
    DatabaseReference pushed = root.child("log").push();
    wait(pushed.setValueAsync(Map.of("what", "created")));
    check(
        "set, update and push read back",
        read(root),
        Map.of(
            "name", "kora",
            "stars", 2L,
            "meta", Map.of("by", "java"),
            "log", Map.of(pushed.getKey(), Map.of("what", "created"))));

    DatabaseReference scores = root.child("scores");
    wait(
        scores.setValueAsync(
            Map.of("a", Map.of("s", 5), "b", Map.of("s", 1), "c", Map.of("s", 9), "d", Map.of("s", 7))));
    List<String> top = new ArrayList<>();
    for (DataSnapshot child : snapshot(scores.orderByChild("s").limitToLast(2)).getChildren()) {
      top.add(child.getKey());
    }
    check("orderByChild + limitToLast, in order", top, List.of("d", "c"));

    // A listener hears each change.
    BlockingQueue<Object> heard = new LinkedBlockingQueue<>();
    ValueEventListener listener =
        root.child("live")
            .addValueEventListener(
                listener(
                    snapshot -> heard.add(Objects.requireNonNullElse(snapshot.getValue(), "null")),
                    error -> heard.add("cancelled: " + error.getMessage())));
    check("listener: first value", heard.poll(WAIT_SECONDS, TimeUnit.SECONDS), "null");
    wait(root.child("live").setValueAsync(1));
    check("listener: the change", heard.poll(WAIT_SECONDS, TimeUnit.SECONDS), 1L);
    root.child("live").removeEventListener(listener);

    // Transactions from 4 threads, 10 increments each: exact.
    DatabaseReference counter = root.child("counter");
    List<CompletableFuture<Void>> runs = new ArrayList<>();
    for (int t = 0; t < 4; t++) {
      runs.add(
          CompletableFuture.runAsync(
              () -> {
                for (int i = 0; i < 10; i++) {
                  increment(counter);
                }
              }));
    }
    CompletableFuture.allOf(runs.toArray(new CompletableFuture[0])).get(60, TimeUnit.SECONDS);
    check("40 concurrent transactional increments", read(counter), 40L);

    // onDisconnect runs when the app goes away; a second app reads the result.
    wait(root.child("online").setValueAsync(true));
    wait(root.child("online").onDisconnect().setValueAsync(false));
    app.delete();
    FirebaseApp reader = FirebaseApp.initializeApp(options, "reader");
    DatabaseReference online =
        FirebaseDatabase.getInstance(reader).getReference(base).child("online");
    long deadline = System.currentTimeMillis() + WAIT_SECONDS * 1000;
    while (!Boolean.FALSE.equals(read(online))) {
      if (System.currentTimeMillis() > deadline) {
        fail("onDisconnect: online is still " + read(online));
      }
      Thread.sleep(50);
    }
    System.out.println("ok: onDisconnect ran");
    reader.delete();
    System.exit(0);
  }

  private static void increment(DatabaseReference counter) {
    CompletableFuture<Boolean> done = new CompletableFuture<>();
    counter.runTransaction(
        new Transaction.Handler() {
          @Override
          public Transaction.Result doTransaction(MutableData data) {
            Long n = data.getValue(Long.class);
            data.setValue(n == null ? 1 : n + 1);
            return Transaction.success(data);
          }

          @Override
          public void onComplete(DatabaseError error, boolean committed, DataSnapshot snapshot) {
            if (error != null) {
              done.completeExceptionally(error.toException());
            } else {
              done.complete(committed);
            }
          }
        });
    try {
      if (!done.get(WAIT_SECONDS, TimeUnit.SECONDS)) {
        fail("a transaction did not commit");
      }
    } catch (Exception e) {
      fail("a transaction failed: " + e);
    }
  }

  private static void wait(ApiFuture<Void> write) throws Exception {
    write.get(WAIT_SECONDS, TimeUnit.SECONDS);
  }

  private static Object read(Query query) throws Exception {
    return snapshot(query).getValue();
  }

  private static DataSnapshot snapshot(Query query) throws Exception {
    CompletableFuture<DataSnapshot> value = new CompletableFuture<>();
    query.addListenerForSingleValueEvent(
        listener(value::complete, error -> value.completeExceptionally(error.toException())));
    return value.get(WAIT_SECONDS, TimeUnit.SECONDS);
  }

  /** A listener calling {@code onData} with each value, {@code onError} if cancelled. */
  static ValueEventListener listener(
      Consumer<DataSnapshot> onData, Consumer<DatabaseError> onError) {
    return new ValueEventListener() {
      @Override
      public void onDataChange(DataSnapshot snapshot) {
        onData.accept(snapshot);
      }

      @Override
      public void onCancelled(DatabaseError error) {
        onError.accept(error);
      }
    };
  }

  private static void check(String what, Object got, Object expected) {
    if (!Objects.equals(got, expected)) {
      fail(what + ": got " + got + ", expected " + expected);
    }
    System.out.println("ok: " + what);
  }

  private static void fail(String message) {
    System.err.println(message);
    System.exit(1);
  }
}

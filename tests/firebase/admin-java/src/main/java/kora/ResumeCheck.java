package kora;

import com.google.auth.oauth2.AccessToken;
import com.google.auth.oauth2.GoogleCredentials;
import com.google.firebase.FirebaseApp;
import com.google.firebase.FirebaseOptions;
import com.google.firebase.database.DataSnapshot;
import com.google.firebase.database.DatabaseReference;
import com.google.firebase.database.FirebaseDatabase;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.Date;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * Google's Java Admin SDK reconnecting with a large cached copy (emulator mode, under the path
 * given as the first argument): it listens on a list of {@code CHILDREN} children, goes
 * offline, prints {@code offline} and waits for a line on stdin (meanwhile the caller changes
 * one child on the server), goes online again and waits until its listener holds the change
 * with every other child intact. On reconnecting the SDK sends the compound hash of its copy;
 * the caller watches what the server sends back. Prints {@code ok: ...} per step; exits 1
 * saying what differed.
 */
public final class ResumeCheck {
  private static final long WAIT_SECONDS = 30;
  private static final int CHILDREN = 2_000;

  public static void main(String[] args) throws Exception {
    FirebaseOptions options =
        FirebaseOptions.builder()
            .setCredentials(
                GoogleCredentials.create(
                    new AccessToken(
                        "unused-in-emulator-mode", new Date(System.currentTimeMillis() + 3_600_000))))
            .setDatabaseUrl("https://demo-kora.firebaseio.com")
            .setProjectId("demo-kora")
            .build();
    FirebaseDatabase db = FirebaseDatabase.getInstance(FirebaseApp.initializeApp(options));
    DatabaseReference list = db.getReference(args[0]).child("list");
    Map<String, Object> children = new LinkedHashMap<>();
    for (int i = 0; i < CHILDREN; i++) {
      children.put(String.format("m%05d", i), Map.of("text", "message " + i));
    }
    list.setValueAsync(children).get(WAIT_SECONDS, TimeUnit.SECONDS);

    BlockingQueue<DataSnapshot> heard = new LinkedBlockingQueue<>();
    list.addValueEventListener(
        AdminCheck.listener(heard::add, error -> fail("the listen was cancelled: " + error)));
    DataSnapshot first = heard.poll(WAIT_SECONDS, TimeUnit.SECONDS);
    if (first == null || first.getChildrenCount() != CHILDREN) {
      fail("the first value: " + (first == null ? "none" : first.getChildrenCount() + " children"));
    }
    System.out.println("ok: listening on " + CHILDREN + " children");

    db.goOffline();
    System.out.println("offline");
    System.out.flush();
    new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8)).readLine();
    db.goOnline();

    long deadline = System.currentTimeMillis() + WAIT_SECONDS * 1000;
    while (true) {
      DataSnapshot now = heard.poll(Math.max(1, deadline - System.currentTimeMillis()), TimeUnit.MILLISECONDS);
      if (now == null) {
        fail("the change made while offline never arrived");
      }
      if ("edited".equals(now.child("m01000/text").getValue())) {
        check("children after resuming", now.getChildrenCount(), (long) CHILDREN);
        check("an untouched child", now.child("m00000/text").getValue(), "message 0");
        check("the last child", now.child("m01999/text").getValue(), "message 1999");
        break;
      }
    }
    System.out.println("ok: resumed");
    System.exit(0);
  }

  private static void check(String what, Object got, Object expected) {
    if (!expected.equals(got)) {
      fail(what + ": got " + got + ", expected " + expected);
    }
  }

  private static void fail(String message) {
    System.err.println(message);
    System.exit(1);
  }
}

window.YTD.tweets.part0 = [
  {
    "tweet" : {
      "edit_info" : { "initial" : { "editTweetIds" : [ "1050118621198921728" ], "editableUntil" : "2018-10-10T21:19:24.000Z", "editsRemaining" : "5", "isEditEligible" : false } },
      "retweeted" : false,
      "source" : "<a href=\"https://mobile.twitter.com\" rel=\"nofollow\">Twitter Web App</a>",
      "entities" : { "hashtags" : [ ], "symbols" : [ ], "user_mentions" : [ ], "urls" : [ ] },
      "display_text_range" : [ "0", "37" ],
      "favorite_count" : "12",
      "id_str" : "1050118621198921728",
      "truncated" : false,
      "retweet_count" : "3",
      "id" : "1050118621198921728",
      "created_at" : "Wed Oct 10 20:19:24 +0000 2018",
      "favorited" : false,
      "full_text" : "Fish &amp; chips &lt;3 &gt; &quot;pizza&quot;",
      "lang" : "en"
    }
  },
  {
    "tweet" : {
      "retweeted" : false,
      "entities" : { "hashtags" : [ ], "symbols" : [ ], "user_mentions" : [ { "name" : "Some One", "screen_name" : "someone", "indices" : [ "3", "11" ], "id_str" : "42", "id" : "42" } ], "urls" : [ ] },
      "favorite_count" : "0",
      "id_str" : "1050118621198921729",
      "retweet_count" : "0",
      "id" : "1050118621198921729",
      "created_at" : "Wed Oct 10 21:00:00 +0000 2018",
      "full_text" : "RT @someone: a retweet is someone else's words",
      "lang" : "en"
    }
  },
  {
    "tweet" : {
      "retweeted" : false,
      "entities" : { "hashtags" : [ ], "symbols" : [ ], "user_mentions" : [ { "name" : "Friend", "screen_name" : "friend", "indices" : [ "0", "7" ], "id_str" : "43", "id" : "43" } ], "urls" : [ ] },
      "favorite_count" : "1",
      "in_reply_to_status_id_str" : "1050118621198921700",
      "in_reply_to_user_id_str" : "43",
      "in_reply_to_screen_name" : "friend",
      "id_str" : "1050118621198921730",
      "id" : "1050118621198921730",
      "created_at" : "Thu Oct 11 08:30:00 +0000 2018",
      "full_text" : "@friend same here",
      "lang" : "en"
    }
  },
  {
    "tweet" : {
      "retweeted" : false,
      "entities" : { "hashtags" : [ ], "symbols" : [ ], "user_mentions" : [ ], "urls" : [ ] },
      "favorite_count" : "140",
      "id_str" : "1650118621198921731",
      "id" : "1650118621198921731",
      "created_at" : "Sun Apr 23 12:00:00 +0000 2023",
      "full_text" : "A long post, well past the old limit of 280 characters, the kind X calls a note tweet. It goes on about how a small word-level LSTM learns the voice of an account from a few thousand posts, how it keeps case and punctuation, and how a person approves each post before it goes out. It ends here.",
      "lang" : "en"
    }
  }
]
